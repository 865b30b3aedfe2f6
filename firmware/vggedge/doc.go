// Command vggedge runs int8 VGG image classification on ARM boards and
// checks, before deployment, whether a model fits a board's memory and
// latency budget.
//
//	vggedge run     [--model digits] [--source URI] [--output jsonl|msgpack:…] [--http ADDR] [--gpio PIN --when L] [--max-frames N]
//	vggedge run     --config /etc/vggedge.yaml   (every flag has a YAML key; flags override the file)
//	vggedge run     --mqtt mqtt://broker:1883 [--mqtt-when L] [--mqtt-discovery] [--snapshot-dir D]
//	vggedge fleet   --mqtt URL [--json --wait 3s]  the boards publishing to a broker: online, fps, latency, last event
//	vggedge reduce  --model M --calib DATA (--rank N | --keep-macs F | --fit BOARD [--fps X]) --out M2
//	vggedge check   --arch vgg16 --board rpi4-4g [--precision int8|fp32] [--latency 250ms | --fps 4] [--mem 300MiB] [--json]
//	vggedge summary --arch vgg16|FILE            the model as PyTorch prints it, and a cost table
//	vggedge boards  [--json]                     the board profiles, and the board this is
//	vggedge quantize --arch A --weights W.pth --calib DATA [--method minmax|percentile|entropy] [--labels FILE] --out M
//	vggedge eval    --model M --data DATA [--limit N] [--json]
//	vggedge classify [--model M] [--topk K] [--json] IMAGE|DIR|GLOB…   top-k per file; accuracy for class folders
//	vggedge info    --model M
//	vggedge train   --arch FILE --data idx:DIR --out M   (the digits demo model)
//	vggedge version
//
// Exit status: 0 success (check: the model fits), 1 check: the model does
// not fit, 2 bad input (unknown board, malformed architecture file,
// impossible sizes, bad flags), with a one-line message on stderr. run
// exits 0 when its source ends (a pipe: command exiting 0 included),
// --max-frames is reached or SIGINT/SIGTERM stops it, and 1 when the source
// or an output fails for good mid-run; SIGHUP reopens its output files. fleet
// exits 3 when the broker cannot be reached; reduce 1 when no reduction
// meets the budget. classify exits 2 when any file could not be classified
// (after classifying the others) or none matched, 0 when all were.
//
// DATA for --calib (quantize, reduce) is idx:PATH, a folder of images
// (flat or ImageFolder), a glob or a file:// URI; eval --data wants labels:
// idx:PATH or an ImageFolder tree. A class folder's name is its truth,
// matched to the model's labels by name (truthIndex) in eval, run and
// classify alike.
//
// Labels: a 1000-class import gets ImageNet-1k's (infer/labels); a --when
// (--mqtt-when, --snapshot-when, YAML when:) name and an ImageFolder class
// folder find a model label by its text, a comma-separated part, an
// ImageNet synonym or WordNet id, any case, resolved once at start-up.
//
// The main package: the commands and their flags, the YAML config, and
// the fleet view. It may import every vggedge package; none imports it.
// What the commands run lives in packages of their own: firmware/live
// (the loop), firmware/output, firmware/livepage, firmware/mqtt (and the
// payloads fleet reads), infer, infer/vgm, infer/labels, quant,
// quant/torchio, camera, boards.
package main
