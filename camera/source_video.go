package camera

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Video files and network streams, decoded by ffmpeg as a supervised child
// (see supervise.go) that writes raw frames to its stdout:
//
//	ffmpeg -nostdin -loglevel error -i INPUT -map 0:v:0 -vf [fps=N,]scale=W:H,setpts=N -pix_fmt P -fps_mode passthrough -f rawvideo -
//
// Raw frames are the cheapest to read correctly (one read per frame, no
// JPEG encode and decode); their size comes from ffprobe, run once at
// Open, which also turns a missing or broken input into a one-line error
// there. ffmpeg applies the rotation a phone records in the stream, so a
// rotation of ±90° swaps the probed sides. The scale filter pins the size
// (a no-op when it is the stream's own), so a stream that changes its
// resolution mid-run still delivers frames of the size the reader expects.
// The pixel format is I420 when both sides are even (what decoders output
// and the fewest bytes through the pipe), else RGB24; ?fmt= or --format
// choose another raw format.
//
//   - "video:PATH", "video:///abs/path", or a bare path whose name ends in
//     a video extension (clip.mp4, /data/run.mkv: see videoExtensions): a
//     file. It is not live — every frame is classified, none dropped — and
//     it ends (ErrEnded, an io.EOF) when ffmpeg exits 0 at its end; an
//     ffmpeg that fails is not restarted (it would start the file over):
//     Read returns its status and last stderr line. Options: ?w=&h= scale
//     (default --size, else the file's size), ?fps=N resamples to N frames
//     per second of video (ffmpeg's fps filter; default --fps, else every
//     frame), ?loop=1 starts over at the end (ffmpeg -stream_loop -1),
//     ?fmt= the raw format. The read watchdog is off: an fps=0.1 sample
//     of a 4K file can take longer than a camera's frame to decode.
//     Frame.Time is when the frame was read (as for file:// and idx:);
//     its place in the video is Frame.Seq (the frame number from 0) over
//     the frame rate the open log line reports.
//   - "rtsp://…", "rtsps://…", "http://…", "https://…": a live stream (RTSP
//     over TCP). The URL goes to ffmpeg whole, its query included (it is
//     the camera's, not ours), so the options come from the flags: --size
//     scales, --fps lowers the rate in ffmpeg, --format picks the raw
//     format. Without --size, ffprobe reads the stream's size at Open, so
//     a server that does not answer fails the start; with it, nothing is
//     probed and ffmpeg is retried until the server is up, as a camera
//     program would be. Frame.Time is when the frame arrived. ffmpeg is
//     restarted with backoff when it exits — whatever its status: a
//     server that restarts ends the connection — or stalls
//     (Options.SourceTimeout), so the stream reconnects. An http(s) URL
//     of a video file is a stream too, replayed each time it ends: for
//     every frame of a remote file, download it and use video:.

func init() {
	register("video", openVideoFile)
	for _, scheme := range []string{"rtsp", "rtsps", "http", "https"} {
		register(scheme, func(rest string, o Options) (Source, error) {
			return openVideoStream(scheme+":"+rest, o)
		})
	}
}

// videoExtensions are the file names Open takes as video files without a
// "video:" prefix.
var videoExtensions = []string{
	".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts",
	".flv", ".wmv", ".3gp", ".ogv", ".y4m", ".h264", ".264", ".h265", ".hevc", ".mjpeg", ".mjpg",
}

// isVideoName reports whether uri, a query tail aside, names a video file
// by its extension.
func isVideoName(uri string) bool {
	if i := strings.LastIndexByte(uri, '?'); i >= 0 && strings.Contains(uri[i+1:], "=") {
		uri = uri[:i]
	}
	ext := strings.ToLower(filepath.Ext(uri))
	for _, e := range videoExtensions {
		if ext == e {
			return true
		}
	}
	return false
}

// ffprobeTimeout bounds ffprobe at Open: a stream server that accepts the
// connection and sends nothing must not hang the start.
const ffprobeTimeout = 30 * time.Second

// videoConfig is what ffmpeg is asked to deliver.
type videoConfig struct {
	input  string // what ffmpeg opens: "file:PATH" or the stream URL
	rtsp   bool   // add -rtsp_transport tcp
	loop   bool
	fps    float64 // 0: every frame
	w, h   int
	format PixelFormat
	// syncOpt is ffmpeg's frame-sync option, -fps_mode or -vsync
	// (ffmpegSyncOption).
	syncOpt string
}

// ffmpegPixFmt is each raw format's ffmpeg -pix_fmt name.
var ffmpegPixFmt = map[PixelFormat]string{
	I420: "yuv420p", NV12: "nv12", YUYV: "yuyv422", RGB24: "rgb24", BGR24: "bgr24", GRAY8: "gray",
}

// ffmpegArgs is ffmpeg's argument list (argv[1:]). -nostdin keeps it off
// our terminal; -map 0:v:0 takes the stream ffprobe described; the sync
// option (videoConfig.syncOpt) set to passthrough writes each decoded
// frame once: the rawvideo muxer would otherwise get constant-rate
// output, with frames duplicated or dropped for a variable-rate file.
func ffmpegArgs(c videoConfig) []string {
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "error"}
	if c.rtsp {
		args = append(args, "-rtsp_transport", "tcp")
	}
	if c.loop {
		args = append(args, "-stream_loop", "-1")
	}
	// setpts=N numbers the frames: the rawvideo muxer has no use for
	// their times, and complains of equal ones (a Matroska file's
	// millisecond stamps, rounded).
	vf := fmt.Sprintf("scale=%d:%d,setpts=N", c.w, c.h)
	if c.fps > 0 {
		vf = "fps=" + strconv.FormatFloat(c.fps, 'g', -1, 64) + "," + vf
	}
	return append(args, "-i", c.input, "-map", "0:v:0", "-an", "-sn", "-dn",
		"-vf", vf, "-pix_fmt", ffmpegPixFmt[c.format], c.syncOpt, "passthrough", "-f", "rawvideo", "-")
}

// ffmpegSyncOpts caches ffmpegSyncOption per ffmpeg path.
var ffmpegSyncOpts sync.Map

// ffmpegSyncOption is the frame-sync option ffmpeg at path knows:
// -fps_mode from version 5.1 on, -vsync before (deprecated since, and
// compiled out of newer builds). A version it cannot read (a git build:
// "N-113012-g…") is taken as new.
func ffmpegSyncOption(path string) string {
	if v, ok := ffmpegSyncOpts.Load(path); ok {
		return v.(string)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, path, "-hide_banner", "-version").Output()
	opt := syncOptionFor(string(out))
	ffmpegSyncOpts.Store(path, opt)
	return opt
}

// syncOptionFor reads "ffmpeg version 4.4.2-0ubuntu0.22.04.1 …" (or
// "… version n7.0 …").
func syncOptionFor(version string) string {
	_, v, ok := strings.Cut(version, "ffmpeg version ")
	v = strings.TrimPrefix(v, "n")
	major, rest, ok2 := strings.Cut(v, ".")
	maj, err := strconv.Atoi(major)
	if !ok || !ok2 || err != nil {
		return "-fps_mode"
	}
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		rest = rest[:i]
	}
	minor, _ := strconv.Atoi(rest) // no digits ("5-dev"): 0
	if maj < 5 || maj == 5 && minor < 1 {
		return "-vsync"
	}
	return "-fps_mode"
}

// videoProbe is what ffprobe says of the first video stream.
type videoProbe struct {
	Codec    string
	W, H     int    // as ffmpeg delivers them: rotation applied
	Rate     string // r_frame_rate, e.g. "30000/1001"; "" when unknown
	Rotation int
}

// probeVideo runs ffprobe on input. Its error is ffprobe's first stderr
// line, which names the input ("clip.mp4: No such file or directory").
func probeVideo(ffprobe, input string, rtsp bool) (videoProbe, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ffprobeTimeout)
	defer cancel()
	args := []string{"-v", "error"}
	if rtsp {
		args = append(args, "-rtsp_transport", "tcp")
	}
	args = append(args, "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,r_frame_rate:stream_side_data=rotation:stream_tags=rotate",
		"-of", "json", input)
	cmd := exec.CommandContext(ctx, ffprobe, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return videoProbe{}, fmt.Errorf("ffprobe %s: no answer in %v", input, ffprobeTimeout)
	}
	if err != nil {
		// The last line says what failed with the input ("file:x.mp4:
		// Invalid data found when processing input"); those before it
		// are a demuxer's details.
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = strings.TrimSpace(msg[i+1:])
		}
		msg = strings.TrimPrefix(msg, input+": ")
		if msg == "" {
			msg = err.Error()
		}
		return videoProbe{}, fmt.Errorf("ffprobe: %s", msg)
	}
	return parseVideoProbe(stdout.Bytes())
}

// parseVideoProbe reads ffprobe's JSON. The rotation is in the display
// matrix side data (ffmpeg 5 and later) or the "rotate" tag (before).
func parseVideoProbe(b []byte) (videoProbe, error) {
	var doc struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			Rate      string `json:"r_frame_rate"`
			SideData  []struct {
				Rotation *int `json:"rotation"`
			} `json:"side_data_list"`
			Tags struct {
				Rotate string `json:"rotate"`
			} `json:"tags"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return videoProbe{}, fmt.Errorf("ffprobe output: %w", err)
	}
	if len(doc.Streams) == 0 {
		return videoProbe{}, errors.New("no video stream")
	}
	st := doc.Streams[0]
	p := videoProbe{Codec: st.CodecName, W: st.Width, H: st.Height}
	if st.Rate != "" && st.Rate != "0/0" {
		p.Rate = st.Rate
	}
	for _, sd := range st.SideData {
		if sd.Rotation != nil {
			p.Rotation = *sd.Rotation
		}
	}
	if p.Rotation == 0 && st.Tags.Rotate != "" {
		p.Rotation, _ = strconv.Atoi(st.Tags.Rotate)
	}
	if p.W <= 0 || p.H <= 0 {
		return videoProbe{}, fmt.Errorf("video stream (%s) of unknown size %dx%d", p.Codec, p.W, p.H)
	}
	if r := ((p.Rotation % 360) + 360) % 360; r == 90 || r == 270 {
		p.W, p.H = p.H, p.W
	}
	return p, nil
}

// findFFmpeg returns the paths of ffmpeg and ffprobe (both in Debian's
// ffmpeg package).
func findFFmpeg() (ffmpeg, ffprobe string, err error) {
	if ffmpeg, err = exec.LookPath("ffmpeg"); err != nil {
		return "", "", errors.New("ffmpeg not found (apt-get install ffmpeg)")
	}
	if ffprobe, err = exec.LookPath("ffprobe"); err != nil {
		return "", "", errors.New("ffprobe not found (apt-get install ffmpeg)")
	}
	return ffmpeg, ffprobe, nil
}

// videoFormat is the raw format to ask ffmpeg for: want when it is one,
// else I420 for even sides and RGB24 for odd ones.
func videoFormat(want PixelFormat, w, h int) (PixelFormat, error) {
	switch {
	case want == MJPEG:
		return "", fmt.Errorf("format MJPEG: ffmpeg's frames are read raw (want one of %s)", rawFormatNames)
	case want != "":
		return want, nil
	case w%2 == 0 && h%2 == 0:
		return I420, nil
	}
	return RGB24, nil
}

func openVideoFile(rest string, o Options) (Source, error) {
	path, q, err := splitSourceQuery("video", rest, "w", "h", "fps", "loop", "fmt")
	if err != nil {
		return nil, err
	}
	if p, ok := strings.CutPrefix(path, "//"); ok {
		path = p // video:///abs/path, as file:// has it
	}
	if path == "" {
		return nil, errors.New("no file: want video:PATH (video:///abs/path for absolute paths)")
	}
	c := videoConfig{input: "file:" + path, fps: o.FPS, w: o.Width, h: o.Height}
	if o.Width <= 0 || o.Height <= 0 {
		c.w, c.h = 0, 0
	}
	if c.w, err = q.int("w", c.w, 1, maxFrameSide); err != nil {
		return nil, err
	}
	if c.h, err = q.int("h", c.h, 1, maxFrameSide); err != nil {
		return nil, err
	}
	if (c.w > 0) != (c.h > 0) {
		return nil, errors.New("query w and h: give both or neither")
	}
	if c.fps, err = q.float("fps", c.fps, 0, maxSourceFPS); err != nil {
		return nil, err
	}
	if c.loop, err = q.bool("loop", false); err != nil {
		return nil, err
	}
	want := o.Format
	if q.has("fmt") {
		if want, err = parsePixelFormat(q.vals.Get("fmt")); err != nil {
			return nil, fmt.Errorf("query fmt: %w", err)
		}
	}
	ffmpeg, ffprobe, err := findFFmpeg()
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err // names the path
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	p, err := probeVideo(ffprobe, c.input, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return startVideo("video:"+path, ffmpeg, c, p, want, o, true)
}

func openVideoStream(url string, o Options) (Source, error) {
	if len(url) <= len("https://") || !strings.Contains(url, "://") {
		return nil, fmt.Errorf("want a stream URL such as rtsp://HOST/PATH or http://HOST:PORT/PATH")
	}
	c := videoConfig{input: url, rtsp: strings.HasPrefix(url, "rtsp:"), fps: o.FPS}
	if o.Width > 0 && o.Height > 0 {
		c.w, c.h = o.Width, o.Height
	}
	ffmpeg, ffprobe, err := findFFmpeg()
	if err != nil {
		return nil, err
	}
	if c.w > 0 { // the size is known: start without the server, as a camera program would
		return startVideo(url, ffmpeg, c, videoProbe{}, o.Format, o, false)
	}
	p, err := probeVideo(ffprobe, url, c.rtsp)
	if err != nil {
		return nil, err
	}
	return startVideo(url, ffmpeg, c, p, o.Format, o, false)
}

// startVideo starts ffmpeg for c, sized by the probe unless c has a size.
func startVideo(uri, ffmpeg string, c videoConfig, p videoProbe, want PixelFormat, o Options, file bool) (Source, error) {
	if c.w == 0 {
		c.w, c.h = p.W, p.H
	}
	var err error
	if c.format, err = videoFormat(want, c.w, c.h); err != nil {
		return nil, err
	}
	s, err := newStreamSource(uri, c.format, c.w, c.h)
	if err != nil {
		return nil, err
	}
	if p.W > 0 {
		logf(o, "%s: %s %dx%d at %s fps; ffmpeg delivers %s %dx%d", uri, p.Codec, p.W, p.H, frameRateText(p.Rate), c.format, c.w, c.h)
	} else {
		logf(o, "%s: not probed (the size is given); ffmpeg delivers %s %dx%d", uri, c.format, c.w, c.h)
	}
	s.file = file
	c.syncOpt = ffmpegSyncOption(ffmpeg)
	s.sup = newSupervisor(uri, "ffmpeg", append([]string{ffmpeg}, ffmpegArgs(c)...), o)
	if file {
		s.sup.finite, s.sup.once = true, true
	} else {
		s.timeout = o.sourceTimeout()
	}
	if err := s.sup.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// frameRateText writes ffprobe's "30000/1001" as "29.97".
func frameRateText(r string) string {
	num, den, ok := strings.Cut(r, "/")
	n, err1 := strconv.ParseFloat(num, 64)
	d, err2 := strconv.ParseFloat(den, 64)
	if !ok || err1 != nil || err2 != nil || n <= 0 || d <= 0 {
		return "unknown"
	}
	return strconv.FormatFloat(n/d, 'g', 4, 64)
}
