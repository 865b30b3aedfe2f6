// Package camera turns frames from cameras and files into the model's
// input: sources (V4L2, CSI, pipes, files, idx data sets), pixel formats and
// the preprocessing into the input tensor a model's InputSpec asks for.
//
// This slice holds the decoder for the idx files the MNIST data set ships
// in (LoadIDX, DecodeIDXImages, DecodeIDXLabels), used to train and to
// evaluate models on real images.
package camera
