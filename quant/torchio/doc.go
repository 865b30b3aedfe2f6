// Package torchio reads float weights — PyTorch's torch.save output (the
// zip format and the legacy pickle stream) and safetensors files — into
// named float32 tensors. Load sniffs the format from the content (and
// hashes the file for the model's provenance); ReadPTH and ReadSafetensors
// read one format each; WriteSafetensors writes the reference
// implementation's bytes (the tests make their fixtures with it).
//
// Every reader treats its file as hostile: a length, shape or offset is
// checked against the bytes that exist before anything is allocated from
// it, and errors name the file, the entry and what was expected. The
// pieces: tensor.go and dtype.go (the Tensor, element decoding), load.go
// (format sniffing), pth.go (torch.save's two formats), pickle_scan.go
// (the bounds check every pickle passes before gopickle's unpickler sees
// it), pickle.go (the unpickler's hooks for torch's classes and storages),
// statedict.go (finding the tensors in what was unpickled, a checkpoint's
// nested state_dict included), zip.go, legacy.go, safetensors.go and
// safetensors_write.go.
//
// It owns file formats only: no model, no layer names (mapping
// torchvision's names onto VGG layers is quant.LoadWeights'), no
// quantization. It must not import quant, infer, firmware, camera or
// boards — quant imports it, never the other way round; a test keeps it
// free of every vggedge import.
package torchio
