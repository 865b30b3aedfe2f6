package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vggedge/vggedge/firmware/output"
)

// mqttFlags are run's --mqtt…, --device-id and --snapshot… flags.
type Flags struct {
	url, ca, deviceID string
	passwordFile      string
	when              output.NameList
	format            string
	on, off           float64
	dwell, statsEvery time.Duration
	discovery         bool
	queue             int
	snap              snapshotConfig
	snapWhen          output.NameList
}

func AddFlags(fs *flag.FlagSet, f *Flags) {
	fs.StringVar(&f.url, "mqtt", "", "publish events, availability and stats to this broker: mqtt://[user:pass@]host[:1883] or mqtts://host[:8883] (default off)")
	fs.StringVar(&f.passwordFile, "mqtt-password-file", "", "read the broker password from this file (one line; instead of a password in the --mqtt URL)")
	fs.StringVar(&f.ca, "mqtt-ca", "", "CA certificate file (PEM) that signs the mqtts:// broker's certificate (default: the system's)")
	fs.StringVar(&f.deviceID, "device-id", "", "this device's id in MQTT topics vggedge/<id>/… ([a-z0-9_-]; default: the hostname)")
	fs.Var(&f.when, "mqtt-when", "labels whose appearance, change or disappearance is an event, comma-separated, matched as --when (default: any label)")
	fs.Float64Var(&f.on, "mqtt-on-score", 0.8, "score at or above which a label is seen")
	fs.Float64Var(&f.off, "mqtt-off-score", 0.5, "score a seen label must fall below to be gone (< --mqtt-on-score)")
	fs.DurationVar(&f.dwell, "mqtt-dwell", 0, "how long a new state must hold before its event is published, e.g. 500ms")
	fs.StringVar(&f.format, "mqtt-format", "json", "event and stats payloads: json or msgpack")
	fs.DurationVar(&f.statsEvery, "mqtt-stats-every", 30*time.Second, "publish stats this often (0: never)")
	fs.BoolVar(&f.discovery, "mqtt-discovery", false, "publish Home Assistant MQTT discovery configs under homeassistant/")
	fs.IntVar(&f.queue, "mqtt-queue", 256, "events held while the broker is unreachable; beyond it the oldest are dropped (counted)")
	fs.StringVar(&f.snap.dir, "snapshot-dir", "", "save the frame of each event as a JPEG in this folder (default off)")
	fs.Var(&f.snapWhen, "snapshot-when", "only events of these labels save a snapshot, comma-separated, matched as --when (default: every event that names a label)")
	fs.IntVar(&f.snap.maxFiles, "snapshot-max-files", 1000, "keep at most this many snapshots, deleting the oldest (0: no limit)")
	fs.Int64Var(&f.snap.maxBytes, "snapshot-max-bytes", 100<<20, "keep at most this many bytes of snapshots, deleting the oldest (0: no limit)")
}

// mqttConfig is everything the event sink runs with.
type Config struct {
	broker   *url.URL // nil: no MQTT, events only take snapshots
	tls      *tls.Config
	deviceID string
	msgpack  bool
	detector detectorConfig
	snap     *snapshotConfig // nil: no snapshots

	statsEvery time.Duration
	discovery  bool
	queueDepth int
	model      string
	board      string

	// Timing; zero values take the defaults (tests shorten them).
	backoffMin, backoffMax time.Duration // reconnect delays
	packetTimeout          time.Duration // wait for a PUBACK
	drainTimeout           time.Duration // Close waits this long for queued events
	connectTimeout         time.Duration // one connection attempt, CONNACK included
	keepAlive              uint16        // seconds
}

// mqttConfigFromFlags validates the flags. It returns nil when neither
// --mqtt nor --snapshot-dir asks for the event sink.
func ConfigFromFlags(f *Flags, labels []string, model, board string) (*Config, error) {
	f.snap.when = slices.Clone(f.snapWhen)
	if err := f.snap.validate(labels); err != nil {
		return nil, err
	}
	if f.url == "" {
		for _, bad := range []struct {
			set  bool
			flag string
		}{{f.ca != "", "--mqtt-ca"}, {f.passwordFile != "", "--mqtt-password-file"}, {f.discovery, "--mqtt-discovery"}, {f.deviceID != "", "--device-id"}, {f.format != "json", "--mqtt-format"}} {
			if bad.set {
				return nil, fmt.Errorf("%s needs --mqtt URL", bad.flag)
			}
		}
		if f.snap.dir == "" {
			if len(f.when) > 0 {
				return nil, fmt.Errorf("--mqtt-when needs --mqtt URL or --snapshot-dir DIR")
			}
			return nil, nil
		}
	}
	c := &Config{
		detector:   detectorConfig{On: f.on, Off: f.off, Hold: f.dwell},
		statsEvery: f.statsEvery, discovery: f.discovery, queueDepth: f.queue,
		model: model, board: board,
	}
	c.detector.When = slices.Clone(f.when)
	if err := c.detector.Validate(labels, detectorFlags); err != nil {
		return nil, err
	}
	if f.snap.dir != "" {
		c.snap = &f.snap
	}
	if f.url == "" {
		return c, nil
	}
	var err error
	if c.broker, c.tls, err = ParseBrokerURL(f.url, f.ca); err != nil {
		return nil, err
	}
	if f.passwordFile != "" {
		if err := setPasswordFromFile(c.broker, f.passwordFile); err != nil {
			return nil, err
		}
	}
	switch f.format {
	case "json":
	case "msgpack":
		c.msgpack = true
		if f.discovery {
			return nil, fmt.Errorf("--mqtt-discovery needs --mqtt-format json: Home Assistant reads the event's JSON")
		}
	default:
		return nil, fmt.Errorf("--mqtt-format %q: want json or msgpack", f.format)
	}
	if f.statsEvery < 0 {
		return nil, fmt.Errorf("--mqtt-stats-every %v: want a duration ≥ 0 (0: never)", f.statsEvery)
	}
	if f.queue < 1 || f.queue > 1<<16 {
		return nil, fmt.Errorf("--mqtt-queue %d: want 1..65536", f.queue)
	}
	if c.deviceID, err = deviceID(f.deviceID); err != nil {
		return nil, err
	}
	return c, nil
}

// setPasswordFromFile sets u's password to the first line of path
// (--mqtt-password-file): a secret kept out of the URL, the YAML file and
// the process list.
func setPasswordFromFile(u *url.URL, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--mqtt-password-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return fmt.Errorf("--mqtt-password-file %s: %w", path, err)
	}
	if len(b) > 4096 {
		return fmt.Errorf("--mqtt-password-file %s: longer than 4096 bytes: want the password alone", path)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return fmt.Errorf("--mqtt-password-file %s: empty first line: want the password", path)
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return fmt.Errorf("--mqtt-password-file %s: --mqtt %s has a password already: give one or the other", path, u.Redacted())
		}
	}
	user := ""
	if u.User != nil {
		user = u.User.Username()
	}
	u.User = url.UserPassword(user, pw)
	return nil
}

// redactRawURL is raw with the password of any user:password@ replaced by
// xxxxx, also when raw does not parse as a URL: for messages.
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Opaque == "" {
		return u.Redacted()
	}
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	auth := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		auth = rest[:i]
	}
	at := strings.LastIndex(auth, "@")
	if at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(auth[:at], ":")
	if !hasPassword {
		return raw
	}
	return prefix + user + ":xxxxx" + rest[at:]
}

// redactErr replaces u, password and all, in err's text (paho's connect
// errors hold the URL as given) by its redacted form.
func redactErr(err error, u *url.URL) error {
	if err == nil || u == nil || u.User == nil {
		return err
	}
	if _, has := u.User.Password(); !has {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), u.String(), u.Redacted())
	if p, _ := u.User.Password(); len(p) >= 6 { // a short one would mangle the message
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return errors.New(msg)
}

// parseBrokerURL reads --mqtt (and --mqtt-ca for mqtts).
func ParseBrokerURL(raw, caFile string) (*url.URL, *tls.Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which holds the password
		}
		return nil, nil, fmt.Errorf("--mqtt %q: %v", RedactURL(raw), err)
	}
	want := "want mqtt://[user:pass@]host[:port] or mqtts://host[:port]"
	if u.Scheme != "mqtt" && u.Scheme != "mqtts" {
		return nil, nil, fmt.Errorf("--mqtt %s: scheme %q: %s", RedactURL(raw), u.Scheme, want)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, nil, fmt.Errorf("--mqtt %s: %s", u.Redacted(), want)
	}
	if u.Port() == "" {
		port := "1883"
		if u.Scheme == "mqtts" {
			port = "8883"
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	if u.Scheme == "mqtt" {
		if caFile != "" {
			return nil, nil, fmt.Errorf("--mqtt-ca %s: only for mqtts:// brokers, --mqtt is %s", caFile, u.Redacted())
		}
		return u, nil, nil
	}
	cfg := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--mqtt-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--mqtt-ca %s: no PEM certificate in it", caFile)
		}
	}
	return u, cfg, nil
}

// deviceID is --device-id, checked, or the hostname made fit for a topic.
func deviceID(flagValue string) (string, error) {
	if flagValue != "" {
		if len(flagValue) > 64 || sanitizeID(flagValue) != flagValue {
			return "", fmt.Errorf("--device-id %q: want 1..64 of a-z, 0-9, _ and -", flagValue)
		}
		return flagValue, nil
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "vggedge", nil
	}
	id := sanitizeID(host)
	return id[:min(len(id), 64)], nil
}
