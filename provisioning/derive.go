package provisioning

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// DeriveDeviceKey returns a group member's key (reference §2.6):
// base64(HMAC-SHA256(base64decode(groupKey), registrationID)). It returns
// "" when groupKey is not standard base64 or is empty.
func DeriveDeviceKey(groupKey, registrationID string) string {
	k, err := base64.StdEncoding.DecodeString(groupKey)
	if err != nil || len(k) == 0 {
		return ""
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte(registrationID))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
