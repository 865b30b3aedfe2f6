// Package vgm reads and writes vggedge's model file (".vgm"): the format
// below, Load and Decode (a bounded msgpack reader that takes hostile
// input, and the validation that everything loaded can run), and Save and
// Encode (deterministic bytes, written atomically).
//
// The model types themselves (infer.Model, infer.QModel, infer.Meta, …)
// belong to infer; this package only maps them to and from bytes, so that
// infer, which every package imports, does not import msgpack. vgm may
// import infer, internal/atomicfile and msgpack, and nothing from firmware,
// quant, camera or boards: those import it.
//
// # Model file format, version 1
//
// A model file (".vgm") is a single msgpack map, and nothing after it:
//
//	{
//	  "format":  "vggedge-model",   required, the first key (the magic)
//	  "version": 1,                 required, the second key
//	  "name":    str,               the model's name ("vgg16", "digits")
//	  "input":   [C, H, W],         required, ints
//	  "spec": {                     how camera pixels become the input
//	    "channel_order":  "RGB" | "BGR" | "GRAY",
//	    "mean":           [float, …],   one per channel, on pixels in [0, 1]
//	    "std":            [float, …],
//	    "resize":         "resize-crop" | "stretch",
//	    "resize_shorter": int,
//	    "resize_filter":  "bilinear-antialias"   absent: area/bilinear
//	  },
//	  "labels": [str, …],           one per output
//	  "provenance": {
//	    "source_file": str, "source_sha256": str, "calibration": str,
//	    "percentile": float, "samples": int, "version": str,
//	    "created": str (RFC 3339), "notes": str
//	  },
//	  "float": {"class": str, "layers": [layer, …]},   the float32 model
//	  "int8":  {"layers": [layer, …]}                  the int8 model
//	}
//
// At least one of "float" and "int8" is present; when both are, they share
// name, input, spec, labels and provenance (the provenance is the int8
// model's: it records the float source and the calibration).
//
// A layer is a map with the fields of an infer.Layer (float) or an
// infer.QLayer (int8), in this order; "name" and "kind" (an infer.Kind:
// "conv2d", "linear", …) are always written, the others when they are not
// zero or nil:
//
//	both:   name, kind (str); in, out, kh, kw, stride, pad, out_h, out_w (int)
//	float:  p, eps (float64); functional (bool);
//	        bias: a bool (always written for conv2d and linear), or the
//	              bias values as a bin of float32, which means bias=true;
//	        weight, gamma, beta, mean, var, weight2, bias2: bin of float32
//	        (weight2 and bias2: a squeezeexcite's second 1x1);
//	        role (str)
//	int8:   relu, logits (bool); in_scale, out_scale (float32);
//	        in_zero, out_zero (int);
//	        weight: bin of int8; bias: bin of int32; w_scale: bin of float32;
//	        mult, shift: bin of int32; pad_value: bin of int8;
//	        se_weight, se_bias, se_weight2, se_bias2: bin of float32 (a
//	        squeezeexcite's float excitation); role (str)
//
// "role" marks a layer vggedge reduce inserted: "reduce", "low-rank" or
// "restore" (see infer.Role). Role and the squeezeexcite kind were added
// within version 1: an older reader skips "role" (a reduced model is an
// ordinary sequential model) and rejects the unknown kind by name.
//
// Tensors are msgpack bin in the layout of the Go field (Conv2d weights
// OIHW, Linear [Out][In]): int8 as raw bytes, float32 and int32
// little-endian, so a bin's length is a whole number of elements; nil reads
// as an absent tensor, an empty bin as an empty one. Scalar floats may be
// written as float32, float64 or integers, integers in any msgpack integer
// format. Strings are UTF-8 without control characters (notes may have
// newlines and tabs).
//
// Readers skip keys they do not know, so later versions may add keys; a
// change that older readers would misread raises "version", and a reader
// refuses versions newer than its own (which is why "format" and "version"
// come first). Keys must be strings and may not repeat.
//
// Each record (a layer, the spec, the provenance, a model) is one table of
// fields in fields.go, which both Decode and Encode use; the lists above
// follow those tables (a test checks them).
//
// Limits: files up to MaxFileSize, at most 4096 layers and 2^20 labels,
// names up to 1024 bytes; every size fits infer.MaxDim. Encode writes keys
// in the order listed here and integers in their shortest form, so equal
// models give equal bytes.
package vgm
