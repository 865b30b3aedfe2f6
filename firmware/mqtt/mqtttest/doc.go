// Package mqtttest runs a real MQTT broker in-process for tests, like
// net/http/httptest: mochi-mqtt (github.com/mochi-mqtt/server/v2), whose
// inline client records every message published, in the order the broker
// delivers them. Only tests import it.
//
// It imports mochi-mqtt and nothing from vggedge; no non-test code may
// import it.
package mqtttest
