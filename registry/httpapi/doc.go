// Package httpapi is the hub's registry REST API, an http.Handler mounted
// on the HTTPS listener. It is compatible with the azure-iothub Node
// Registry client (api-version 2021-04-12, reference §7) and adds CA
// certificate management, which IoT Hub keeps in ARM.
//
// Imports: registry and the standard library. The handler never listens;
// cmd mounts it. Authorization is delegated to a PolicyAuthorizer
// (authn.Authenticator).
//
// Every request needs `Authorization: SharedAccessSignature sr=<host>&sig=…&skn=<policy>&se=…`
// (RegistryRead for GET, RegistryWrite for PUT, DELETE and POST; a failure
// is 401 IotHubUnauthorizedAccess with the reason only in the server log)
// and an `api-version` query parameter (presence only; 400 if absent).
// Path segments are percent-decoded one by one, so %2F inside an id does not
// split it.
//
// Devices (reference §7.2–7.4):
//
//	PUT    /devices/{id}   no If-Match: create (409 DeviceAlreadyExists if taken);
//	                       If-Match: update (404, 412 on etag mismatch)
//	GET    /devices/{id}
//	DELETE /devices/{id}   If-Match optional → 204
//	GET    /devices        list in id order, at most 1000; ?top=N (1..1000)
//
// If-Match "*", * (or absent on DELETE) is unconditional; otherwise quotes
// and W/ are stripped and the value compared with the stored etag.
//
// CA certificates (hubgate's own design; bodies are JSON):
//
//	PUT    /certificates/{name}                           {"certificate":"<PEM>","isVerified":false}
//	                                                      → 200 CA; create only (409 CertificateAlreadyExists)
//	GET    /certificates/{name}                           → 200 CA
//	GET    /certificates                                  → 200 {"value":[CA…]} (the ARM list shape)
//	DELETE /certificates/{name}                           If-Match optional → 204
//	POST   /certificates/{name}/generateVerificationCode  If-Match optional → 200 CA incl. "verificationCode"
//	POST   /certificates/{name}/verify                    {"certificate":"<PEM of a certificate signed by the
//	                                                      CA's key with CN = verificationCode>"} → 200 CA, "status":"verified"
//
// A CA document is registry.CA: name, certificate (PEM), thumbprint (hex
// SHA-256), subject, expiry, status (unverified|verified), verificationCode
// (while one is pending), etag, created, updated. Names are 1..128 ASCII
// letters, digits, - . _ .
//
// Responses: every one has Content-Type application/json; charset=utf-8
// (Node parses only JSON-typed bodies); device and CA responses carry the
// full document and an ETag header. Errors follow reference §7.5: the status,
// header iothub-errorcode, and body
// {"Message":"ErrorCode:<Code>;<text>","ExceptionMessage":"Tracking ID:<id>-G:0-TimeStamp:<ts>"}.
// Codes: DeviceNotFound and CertificateNotFound 404, DeviceAlreadyExists and
// CertificateAlreadyExists 409, PreconditionFailed 412, ArgumentInvalid 400,
// IotHubUnauthorizedAccess 401, RequestEntityTooLarge 413 (bodies are capped
// at 64 KiB), NotFound 404 (unknown path), MethodNotAllowed 405,
// ServiceUnavailable 503 (store unreachable), ServerError 500.
package httpapi
