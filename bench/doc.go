// Package bench is hubgate's load harness: virtual devices that connect over
// real sockets, and measurements of the server process (CPU and RSS from
// /proc). Today it has the `hold` workload (N idle MQTT/TLS devices, server
// memory per connection); connect/storm/telemetry and the same-run baselines
// follow.
package bench
