// Package atomicfile replaces files so that a reader, or the machine losing
// power, sees either the old content or the whole new one: the data goes to
// a temporary file in the same directory, which is synced, renamed over the
// target, and then the directory itself is synced so the rename survives a
// crash. It is the one such helper of the module: the model file
// (vgm.Save), board profiles (boards.SaveProfile) and snapshots
// (vggedge run --snapshot-dir) all write through it.
//
// It owns nothing of vggedge's domain and lives under the module's
// internal/ so that every package (firmware, infer, quant, boards, cross)
// may import it while nothing outside the module can; it must import only
// the standard library, never another vggedge package, so that it stays a
// leaf and the arrows between the top-level packages stay as they are.
package atomicfile
