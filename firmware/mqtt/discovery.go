package mqtt

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Home Assistant MQTT discovery (--mqtt-discovery). Field names and the
// config topic layout <prefix>/<component>/[<node_id>/]<object_id>/config
// follow the Home Assistant docs:
// https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery,
// https://www.home-assistant.io/integrations/sensor.mqtt/ and
// https://www.home-assistant.io/integrations/binary_sensor.mqtt/.
// node_id and object_id may only hold [a-zA-Z0-9_-], which sanitizeID
// guarantees. Configs are retained and sent again after each reconnect,
// so a Home Assistant that starts later still finds them.

const discoveryPrefix = "homeassistant"

// haDevice is the discovery "device" block that groups the entities.
type haDevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
}

// haEntity is one discovery config (sensor or binary_sensor).
type haEntity struct {
	Name                string   `json:"name"`
	UniqueID            string   `json:"unique_id"`
	StateTopic          string   `json:"state_topic"`
	ValueTemplate       string   `json:"value_template"`
	JSONAttributesTopic string   `json:"json_attributes_topic,omitempty"`
	AvailabilityTopic   string   `json:"availability_topic"`
	PayloadAvailable    string   `json:"payload_available"`
	PayloadNotAvailable string   `json:"payload_not_available"`
	PayloadOn           string   `json:"payload_on,omitempty"`
	PayloadOff          string   `json:"payload_off,omitempty"`
	Icon                string   `json:"icon,omitempty"`
	Device              haDevice `json:"device"`
}

// discoveryMessages are the retained configs: one sensor for the label
// seen (state: the label, or "none"), and one binary sensor per
// --mqtt-when label (ON while that label is seen). Both read the retained
// event topic, so they know the current state as soon as they subscribe.
func (m *Sink) discoveryMessages() ([]mqttMessage, error) {
	id := m.cfg.deviceID
	node := "vggedge_" + id
	dev := haDevice{
		Identifiers:  []string{node},
		Name:         "vggedge " + id,
		Manufacturer: "vggedge",
		Model:        fmt.Sprintf("%s on %s", m.cfg.model, m.cfg.board),
	}
	base := haEntity{
		StateTopic:          m.topicEvent,
		AvailabilityTopic:   m.topicAvail,
		PayloadAvailable:    PayloadOnline,
		PayloadNotAvailable: PayloadOffline,
		Device:              dev,
	}
	label := base
	label.Name = "Label"
	label.UniqueID = node + "_label"
	label.ValueTemplate = "{{ value_json.label if value_json.label else 'none' }}"
	label.JSONAttributesTopic = m.topicEvent
	label.Icon = "mdi:eye"
	var msgs []mqttMessage
	add := func(component, object string, e *haEntity) error {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("discovery %s: %w", object, err)
		}
		msgs = append(msgs, mqttMessage{topic: discoveryPrefix + "/" + component + "/" + node + "/" + object + "/config", payload: b, retain: true})
		return nil
	}
	if err := add("sensor", "label", &label); err != nil {
		return nil, err
	}
	for _, w := range m.cfg.detector.When {
		obj := "seen_" + sanitizeID(w)
		b := base
		b.Name = w
		b.UniqueID = node + "_" + obj
		b.ValueTemplate = "{{ 'ON' if value_json.label == '" + jinjaQuote(w) + "' else 'OFF' }}"
		b.PayloadOn, b.PayloadOff = "ON", "OFF"
		if err := add("binary_sensor", obj, &b); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

// jinjaQuote escapes s for a single-quoted Jinja string literal (labels
// such as "jack-o'-lantern").
func jinjaQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}
