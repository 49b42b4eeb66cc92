// Command hubgate is the IoT-Hub-compatible device gateway: `hubgate serve`
// runs a hub; the other commands administer one over its REST API or mint
// credentials offline. Only this package reads flags, env and files.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: hubgate <command> [flags]

commands:
  serve                          run a hub (MQTT 8883, HTTPS+WebSockets 443)
  device create ID [--auth sas|selfsigned|ca] [--primary-thumbprint T] [--secondary-thumbprint T] [--disabled]
  device get|delete|enable|disable ID
  device list
  device connection-string ID
  ca add NAME FILE [--verified]
  ca list
  ca verification-code NAME
  ca verify NAME --cert FILE
  token --hostname HOST --device ID --key KEY [--ttl 1h]
  pki dev-certs --dir DIR --hostname H   development CA + server certificate
  bench hold --devices N                 idle-connection memory benchmark
  dps serve|hub|enrollment|group|registration ...   the provisioning service (hubgate dps help)
  version

Admin commands take --connection-string (HUBGATE_CONNECTION_STRING; default:
<data-dir>/iothubowner.connection-string), --hub-address HOST:PORT (default:
the connection string's HostName on 443) and --ca-file (HUBGATE_CA_FILE;
default: <data-dir>/dev-ca.pem when present).
`

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hubgate:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:])
	case "device":
		return runDevice(ctx, args[1:])
	case "ca":
		return runCA(ctx, args[1:])
	case "token":
		return runToken(args[1:])
	case "pki":
		return runPKI(args[1:])
	case "bench":
		return runBench(ctx, args[1:])
	case "dps":
		return runDPS(ctx, args[1:])
	case "version":
		fmt.Println(version)
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
