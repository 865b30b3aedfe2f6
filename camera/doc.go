// Package camera turns frames from cameras and files into the model's
// input: sources (V4L2, CSI, pipes, files, idx data sets), pixel formats and
// the preprocessing into the input tensor a model's InputSpec asks for.
//
// The idx decoder (LoadIDX, DecodeIDXImages, DecodeIDXLabels) reads the
// files the MNIST data set ships in, used to train, evaluate and replay
// real images; OpenDataset serves labelled images for eval and
// calibration (unlabelled ones too: a flat folder, a glob). An
// ImageFolder's classes are its sub-folder names, sorted (as
// torchvision's); the class index a Sample returns is the folder's
// position there, and the caller maps the names to its model's labels
// (vggedge eval, run and classify do so by name or WordNet id, never by
// position). ListImages is the one reading of a file argument (a
// directory's images recursively, a glob, a file) that the file source,
// datasets and classify share.
//
// V4L2 cameras ("v4l2:///dev/video0", "v4l2:0", or "v4l2:" for the first)
// are read in pure Go through github.com/blackjack/webcam: mmap streaming
// with 3 kernel buffers, and Read always delivers the newest frame, so
// latency never piles up. The mode is chosen per Options: YUYV or MJPEG
// only; the smallest size at least Width×Height (else the largest); the
// rate closest to FPS; YUYV when the camera offers it as big and as fast
// as MJPEG and width×height×2×fps fits USB 2.0's 24.576 MB/s, else MJPEG.
// BufferBytes reports the kernel buffers' memory for the budget check.
//
// OpenCV sources ("gocv:0", "gocv:/path/clip.mp4", "gocv:rtsp://…",
// "gocv:gst:… ! appsink") need the gocv build tag and libopencv-dev
// (gocv.io/x/gocv v0.31.0 matches Debian 12's OpenCV 4.6.0); they deliver
// BGR24 frames from one reused Mat. The default static build answers them
// with an error that says how to rebuild.
//
// Sources are opened by URI (Open), as jetson-inference's input_URI:
// "csi://0" (the Pi camera through rpicam-vid/libcamera-vid, or a Jetson's
// nvarguscamerasrc through gst-launch-1.0, no cgo), "v4l2:///dev/video0",
// "pipe:CMD" (raw frames or MJPEG from a shell command's stdout, with
// --format and --size), "video:PATH" or a bare clip.mp4 (a video file,
// every frame, then io.EOF; not live), "rtsp://…", "rtsps://…", "http://…",
// "https://…" (live streams; both decoded by ffmpeg into raw frames sized
// by ffprobe), "file://GLOB|DIR" (JPEG/PNG files; an ImageFolder
// directory labels frames, and every frame carries its path in File),
// "idx:PATH" (MNIST idx sets), "synthetic" (a
// moving test pattern) and "bundled:digits" (1000 MNIST test digits
// embedded in the binary, paced like a camera). OpenDefault picks the
// first camera that exists. Programs behind csi://, pipe:, video: and
// the stream URLs are supervised: own process group, SIGTERM then SIGKILL
// on Close, reaped, restarted with backoff (a video file's ffmpeg
// excepted: it would start the file over) when they die or send
// MaxCorruptRun corrupt frames in a row (corrupt frames are logged at most
// once a second, with a count of the lines held back); Reconnecting does
// the same for any live source that fails. Reads reuse Frame.Data and
// allocate nothing in the steady state (image files excepted: each is
// decoded).
//
// Frames become model input through a Preprocessor (NewPreprocessor,
// Into): any PixelFormat (YUYV, I420, NV12, MJPEG, RGB24, BGR24, GRAY) to
// u8 CHW in the InputSpec's channel order (RGB, BGR, or BT.601 luma for
// GRAY), resized as torchvision's Resize+CenterCrop ("resize-crop") or
// straight ("stretch"), by area averaging where an axis shrinks 2× or more
// and bilinearly otherwise, or as PIL's antialiased bilinear (what
// torchvision's Resize does to PIL images) when the spec's ResizeFilter
// is "bilinear-antialias". Only the rows and columns the resize reads are
// colour-converted. Raw YUV is read as BT.601 limited range (the V4L2 and
// libcamera default; Preprocessor.YUV selects BT601Full), JPEG as JFIF full
// range. MJPEG frames go through JPEGDecoder, our own baseline decoder
// (integer LLM IDCT, 4:4:4/4:2:2/4:2:0, restart markers, the standard
// Huffman tables when a UVC camera leaves DHT out; progressive refused),
// which keeps its planes between frames: the steady state allocates
// nothing for any format. ToRGB gives a frame at full size as RGB24 (for
// previews); ImageToCHW gives datasets' images exactly the Preprocessor's
// pixels. Wrong-sized frames and corrupt JPEGs are errors, never panics.
//
// It imports infer (the model input shape and spec a Preprocessor
// follows) and the V4L2 and unix libraries; nothing from quant, boards or
// firmware. gocv (OpenCV, cgo) only behind the gocv build tag.
package camera
