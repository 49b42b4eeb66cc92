package provisioning

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
)

// pickHashed chooses a hub for registrationID by weighted rendezvous
// hashing: each hub scores -weight/ln(u) with u a hash of (hub, id) in
// (0,1), the highest score wins. The choice is stable (the same id always
// lands on the same hub while the set is unchanged), spreads ids in
// proportion to the weights, and adding or removing a hub only moves the ids
// that hub wins or held. Weights below 1 count as 1.
func pickHashed(hubs []LinkedHub, registrationID string) (LinkedHub, bool) {
	var best LinkedHub
	bestScore := math.Inf(-1)
	found := false
	id := strings.ToLower(registrationID) // registration ids are case-insensitive
	for _, h := range hubs {
		sum := sha256.Sum256([]byte(strings.ToLower(h.HostName) + "\x00" + id))
		// 53 random bits → u in (0,1).
		u := (float64(binary.BigEndian.Uint64(sum[:8])>>11) + 0.5) / (1 << 53)
		w := float64(max(h.AllocationWeight, 1))
		score := -w / math.Log(u)
		if !found || score > bestScore || (score == bestScore && h.HostName < best.HostName) {
			best, bestScore, found = h, score, true
		}
	}
	return best, found
}

// customRequest is the webhook's body (reference §6.5, concepts-custom-allocation).
type customRequest struct {
	IndividualEnrollment *IndividualEnrollment `json:"individualEnrollment,omitempty"`
	EnrollmentGroup      *EnrollmentGroup      `json:"enrollmentGroup,omitempty"`
	DeviceRuntimeContext customContext         `json:"deviceRuntimeContext"`
	LinkedHubs           []string              `json:"linkedHubs"`
}

type customContext struct {
	RegistrationID        string            `json:"registrationId"`
	CurrentIoTHubHostName string            `json:"currentIotHubHostName,omitempty"`
	CurrentDeviceID       string            `json:"currentDeviceId,omitempty"`
	SymmetricKey          map[string]string `json:"symmetricKey,omitempty"`
	X509                  map[string]string `json:"x509,omitempty"`
	Payload               json.RawMessage   `json:"payload,omitempty"`
}

type customResponse struct {
	IoTHubHostName string          `json:"iotHubHostName"`
	InitialTwin    InitialTwin     `json:"initialTwin,omitempty"`
	Payload        json.RawMessage `json:"payload,omitempty"`
}

// maxWebhookResponse caps what a webhook may answer.
const maxWebhookResponse = 1 << 20

// callWebhook asks a custom allocation webhook for a hub; the hub must be one
// of candidates.
func callWebhook(ctx context.Context, client *http.Client, def *CustomAllocationDefinition, req customRequest) (customResponse, error) {
	var out customResponse
	if def == nil || def.WebhookURL == "" {
		return out, fmt.Errorf("%w: custom allocation without a webhookUrl", ErrInvalid)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return out, err
	}
	u := def.WebhookURL
	if def.APIVersion != "" && !strings.Contains(u, "api-version=") {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "api-version=" + def.APIVersion
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return out, err
	}
	hr.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := client.Do(hr)
	if err != nil {
		return out, fmt.Errorf("custom allocation webhook: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxWebhookResponse))
	if err != nil {
		return out, fmt.Errorf("custom allocation webhook: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return out, fmt.Errorf("custom allocation webhook answered %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return out, fmt.Errorf("custom allocation webhook: answer is not JSON: %w", err)
	}
	return out, nil
}
