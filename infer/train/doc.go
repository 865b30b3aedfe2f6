// Package train trains an infer.Model in float32 on the CPU: the models
// vggedge deploys are small enough (a few million multiply-accumulates per
// image) that a workstation, or the board itself, trains them in minutes.
//
// It implements forward passes that keep what the backward pass needs, and
// the backward passes, of Conv2d (any kernel, stride and padding: im2col
// and the shared float GEMM, kernels.GemmFloat), ReLU, MaxPool2d,
// AdaptiveAvgPool2d (kernels.AdaptiveBin's bins), Flatten, Linear and
// Dropout, with a softmax cross-entropy loss; He initialisation; SGD with
// momentum and weight decay under a linear warm-up and cosine learning-rate
// schedule; and shifted-image augmentation.
//
// # Determinism
//
// Every random draw comes from math/rand/v2 PCG streams derived from the
// seed (shuffling per epoch; initialisation per layer; augmentation and
// dropout per sample and step), never from a shared generator that
// goroutines race on. A batch is split into a fixed number of shards
// (Config.Shards, 2 by default) that run in parallel, and their gradients
// are summed in shard order, so a seed gives the same weights bit for bit
// whatever GOMAXPROCS is or how the goroutines are scheduled. The result
// does depend on the shard count and on the GEMM's micro-kernel
// (kernels.GemmFloat): amd64 with AVX2 and FMA uses fused multiply-adds,
// which round differently from the generic Go kernel built without FMA
// (-tags purego, or a CPU without them), so weights are reproducible on
// one platform, not across them. On arm64 the NEON kernel and the generic
// one (which the Go compiler fuses there) give the same bits.
//
// The layer code is generic over float32 and float64: training runs in
// float32, and the gradient tests run the same code in float64, where
// finite differences are accurate enough to check it.
//
// It imports infer and infer/kernels (the float GEMM); nothing from quant,
// camera or firmware.
package train
