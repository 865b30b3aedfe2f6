// Package torchsave writes torch.save output, for tests: it lets the tests
// of quant/torchio and quant make .pth files (a VGG16 state_dict included)
// without PyTorch. It reproduces torch.save byte for byte — torchio's
// TestPTHWriterMatchesTorch compares it with files written by real PyTorch
// (gopickle's fixtures) — so what the readers are tested on is what users
// have. (Its state_dict pickles were also compared, when it
// was written, with CPython 3.11's pickler run on an emulation of torch's
// reduce and persistent_id — past 256 memo entries, with _metadata, and
// legacy: identical bytes.)
//
// What torch.save(obj, f) writes (torch/serialization.py _save, and
// caffe2/serialize/inline_container.cc PyTorchFileWriter over miniz):
//
// Zip format. Records, all stored (method 0), in this order:
//
//	<archive>/data.pkl        the pickle of obj
//	<archive>/byteorder       "little" (PyTorch ≥ 1.13; absent before)
//	<archive>/data/<key>      each storage's raw little-endian bytes, keys in
//	                          string-sorted order ("0", "1", "10", "2", …)
//	<archive>/version         "3\n"
//
// <archive> is "archive" in current PyTorch, the file's stem in 1.6-era
// releases (gopickle's fixtures). miniz writes each local header with
// version 0, flags 0x0808 (data descriptor follows, UTF-8 names), time and
// date 0, CRC and sizes 0, and an extra field "FB" + uint16 n + n×'Z' that
// pads the data to a 64-byte boundary (the 4-byte "FB" header is written
// even when n is 0); after the data a descriptor PK\x07\x08, CRC-32,
// sizes. The central directory repeats the entries (version 0, no extra
// field, attributes 0), and the archive ends with a zip64 end record
// (version made by 0x031e, needed 45), its locator, and the classic end
// record — miniz is opened with MZ_ZIP_FLAG_WRITE_ZIP64, so even small
// files have them.
//
// The pickle is protocol 2, as CPython's pickler writes it: PROTO 2; a
// global as GLOBAL "module\nname\n"; a str as BINUNICODE; ints as BININT1,
// BININT2 or BININT; False as NEWFALSE; a tuple of ≤ 3 items as its items
// then TUPLE1/2/3, a longer one as MARK … TUPLE, () as EMPTY_TUPLE; an
// object reduced to (callable, args) as callable, args, REDUCE; dict items
// in batches of 1000 as MARK k v … SETITEMS (one item: k v SETITEM).
// Every global, str, non-empty tuple, dict and reduced object is memoized
// (BINPUT n, or LONG_BINPUT from 256 on) and a repeat of the same object
// is a BINGET: the globals, and the literals 'storage' and 'cpu' that
// torch passes for every storage. A state_dict is
//
//	OrderedDict (GLOBAL collections OrderedDict; EMPTY_TUPLE; REDUCE)
//	  SETITEMS of name → tensor, a tensor being
//	  torch._utils._rebuild_tensor_v2(
//	      BINPERSID of ('storage', torch.FloatStorage, key, 'cpu', numel),
//	      storage_offset, size, stride, False, OrderedDict())
//	  then, if it carries _metadata, the state {'_metadata': OrderedDict(
//	  module → {'version': 1})} and BUILD.
//
// Legacy format (_use_new_zipfile_serialization=False, and all files from
// before PyTorch 1.6): five pickles back to back — the magic number
// 0x1950a86a20f9469cfc6c (LONG1), the protocol version 1001,
// sys_info {'protocol_version': 1001, 'little_endian': True,
// 'type_sizes': {'short': 2, 'int': 4, 'long': 4}}, the object (persistent
// ids with a sixth field, the view metadata, None here), the sorted list of
// storage keys — then each storage as an 8-byte little-endian element
// count and its bytes. PyTorch < 0.4 (torchvision's 2017 VGG weights)
// pickles tensors with torch._utils._rebuild_tensor(storage,
// storage_offset, size, stride) instead of _rebuild_tensor_v2.
//
// It is test support, not an importer: nothing outside the tests uses it.
// It imports only the standard library (not torchio, so that torchio's
// in-package tests can import it without a cycle) and lives under
// quant/internal so that only quant and quant/torchio see it.
package torchsave
