package authn

import "testing"

func TestParseMQTTUsername(t *testing.T) {
	const node = "localhost/dev1/?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F1.18.4%20(node%20v20.20.2%3B%20Debian%2012%3B%20x64)"
	tests := []struct {
		name string
		in   string
		want MQTTUsername
		err  error
	}{
		{"ok/node-device", node, MQTTUsername{Host: "localhost", DeviceID: "dev1", APIVersion: "2021-04-12",
			ClientType: "azure-iot-device/1.18.4 (node v20.20.2; Debian 12; x64)"}, nil},
		{"ok/node-module", "localhost/dev1/mod1/?api-version=2021-04-12&DeviceClientType=x",
			MQTTUsername{Host: "localhost", DeviceID: "dev1", ModuleID: "mod1", APIVersion: "2021-04-12", ClientType: "x"}, nil},
		{"ok/model-id", "h/d/?api-version=2021-04-12&model-id=dtmi%3Acom%3Aexample%3BThermostat%3B1&DeviceClientType=c",
			MQTTUsername{Host: "h", DeviceID: "d", APIVersion: "2021-04-12", ModelID: "dtmi:com:example;Thermostat;1", ClientType: "c"}, nil},
		{"ok/c-sdk", "h.azure-devices.net/d/?api-version=2020-09-30&DeviceClientType=iothubclient%2f1.11.0",
			MQTTUsername{Host: "h.azure-devices.net", DeviceID: "d", APIVersion: "2020-09-30", ClientType: "iothubclient/1.11.0"}, nil},
		{"ok/no-question-mark", "h/d/api-version=2018-06-30&DeviceClientType=c",
			MQTTUsername{Host: "h", DeviceID: "d", APIVersion: "2018-06-30", ClientType: "c"}, nil},
		{"ok/no-question-mark-module", "h/d/m/DeviceClientType=c&api-version=2018-06-30",
			MQTTUsername{Host: "h", DeviceID: "d", ModuleID: "m", APIVersion: "2018-06-30", ClientType: "c"}, nil},
		{"ok/leading-ampersand", "h/d/?&api-version=1",
			MQTTUsername{Host: "h", DeviceID: "d", APIVersion: "1"}, nil},
		{"ok/unknown-params-ignored", "h/d/?foo=bar&api-version=1&flag",
			MQTTUsername{Host: "h", DeviceID: "d", APIVersion: "1"}, nil},
		{"ok/first-occurrence-wins", "h/d/?api-version=1&api-version=2",
			MQTTUsername{Host: "h", DeviceID: "d", APIVersion: "1"}, nil},
		{"ok/question-mark-in-device-id", "h/d?x/?api-version=1",
			MQTTUsername{Host: "h", DeviceID: "d?x", APIVersion: "1"}, nil},
		{"ok/percent-in-device-id-kept", "h/a%2Fb/?api-version=1",
			MQTTUsername{Host: "h", DeviceID: "a%2Fb", APIVersion: "1"}, nil},
		{"ok/invalid-escape-kept", "h/d/?api-version=1&DeviceClientType=50%25%zz",
			MQTTUsername{Host: "h", DeviceID: "d", APIVersion: "1", ClientType: "50%%zz"}, nil},
		{"ok/auth-chain", "h/d/?api-version=1&auth-chain=leaf%3Bparent",
			MQTTUsername{Host: "h", DeviceID: "d", APIVersion: "1", AuthChain: "leaf;parent"}, nil},
		{"ok/host-with-port", "localhost:8883/dev1/?api-version=1",
			MQTTUsername{Host: "localhost:8883", DeviceID: "dev1", APIVersion: "1"}, nil},
		{"fail/empty", "", MQTTUsername{}, ErrMalformedUsername},
		{"fail/two-segments", "h/?api-version=1", MQTTUsername{}, ErrMalformedUsername},
		{"fail/five-segments", "h/d/m/x/?api-version=1", MQTTUsername{}, ErrMalformedUsername},
		{"fail/no-api-version", "h/d/?DeviceClientType=c", MQTTUsername{}, ErrMalformedUsername},
		{"fail/empty-api-version", "h/d/?api-version=&DeviceClientType=c", MQTTUsername{}, ErrMalformedUsername},
		{"fail/api-version-name-case", "h/d/?API-VERSION=1", MQTTUsername{}, ErrMalformedUsername},
		{"fail/no-properties", "h/d/m", MQTTUsername{}, ErrMalformedUsername},
		{"fail/empty-device", "h//?api-version=1", MQTTUsername{}, ErrMalformedUsername},
		{"fail/blank-device", "h/ /?api-version=1", MQTTUsername{}, ErrMalformedUsername},
		{"fail/empty-module", "h/d//?api-version=1", MQTTUsername{}, ErrMalformedUsername},
		{"fail/empty-host", "/d/?api-version=1", MQTTUsername{}, ErrMalformedUsername},
		{"fail/unencoded-slash-in-properties", "h/d/?api-version=1&DeviceClientType=a/b", MQTTUsername{}, ErrMalformedUsername},
		{"fail/too-long", "h/d/?api-version=1&x=" + string(make([]byte, maxUsernameLen)), MQTTUsername{}, ErrMalformedUsername},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMQTTUsername(tt.in)
			wantErr(t, err, tt.err)
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
