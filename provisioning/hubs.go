package provisioning

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hubgate/hubgate/internal/hubclient"
	"github.com/hubgate/hubgate/registry"
)

// HubRegistry is what the service needs from a linked hub: its registry
// REST API, the same one external tools use (DESIGN.md processes).
type HubRegistry interface {
	Device(ctx context.Context, id string) (registry.Device, error)
	PutDevice(ctx context.Context, d registry.Device, ifMatch string) (registry.Device, error)
	DeleteDevice(ctx context.Context, id string) error
}

// HubDialer returns the registry client of a linked hub.
type HubDialer func(LinkedHub) (HubRegistry, error)

// DialHub is the default HubDialer: internal/hubclient over HTTPS with the
// link's connection string, address and CA.
func DialHub(h LinkedHub) (HubRegistry, error) {
	c, err := hubclient.New(h.ConnectionString, hubclient.Options{Address: h.Address, CAPEM: []byte(h.CAPEM)})
	if err != nil {
		return nil, err
	}
	return restHub{c}, nil
}

type restHub struct{ c *hubclient.Client }

func (r restHub) Device(ctx context.Context, id string) (registry.Device, error) {
	var d registry.Device
	err := r.c.Do(ctx, http.MethodGet, hubclient.DevicePath(id), "", nil, &d)
	return d, hubError(err)
}

func (r restHub) PutDevice(ctx context.Context, d registry.Device, ifMatch string) (registry.Device, error) {
	var out registry.Device
	err := r.c.Do(ctx, http.MethodPut, hubclient.DevicePath(d.DeviceID), ifMatch, d, &out)
	return out, hubError(err)
}

func (r restHub) DeleteDevice(ctx context.Context, id string) error {
	return hubError(r.c.Do(ctx, http.MethodDelete, hubclient.DevicePath(id), "*", nil, nil))
}

// hubError maps the hub's answers onto the service's sentinels.
func hubError(err error) error {
	var he *hubclient.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &he) && he.Status == http.StatusNotFound:
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case errors.As(err, &he) && he.Status == http.StatusConflict:
		return fmt.Errorf("%w: %v", ErrExists, err)
	case errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden):
		return fmt.Errorf("%w: %v", ErrHubUnauthorized, err)
	case errors.As(err, &he) && he.Status == http.StatusBadRequest:
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return fmt.Errorf("%w: %v", ErrHubUnavailable, err)
}

// upsertIdentity makes the hub's identity of deviceID carry auth. An
// existing identity keeps its status (an operator's disable stands) unless
// reset, which re-seeds it from the enrollment.
func upsertIdentity(ctx context.Context, hub HubRegistry, deviceID string, auth registry.Authentication, caps Capabilities, reset bool) error {
	d := registry.Device{DeviceID: deviceID, Status: registry.StatusEnabled, Authentication: auth,
		Capabilities: registry.Capabilities{IoTEdge: caps.IoTEdge}}
	_, err := hub.PutDevice(ctx, d, "")
	if !errors.Is(err, ErrExists) {
		return err
	}
	cur, err := hub.Device(ctx, deviceID)
	if err != nil {
		return err
	}
	cur.Authentication = auth
	if reset {
		cur.Status = registry.StatusEnabled
		cur.Capabilities = d.Capabilities
	}
	_, err = hub.PutDevice(ctx, cur, "*")
	return err
}
