// Package labels is what vggedge knows about class labels: ImageNet-1k's
// 1000 classes, embedded in the binary; label files (--labels); and the
// one rule by which a name a user gives — a --when trigger, a YAML when:
// item, a dataset's class folder — finds the model's label.
//
// # ImageNet-1k
//
// imagenet.tsv holds, for each class in torchvision's index order (the
// order of the WordNet ids, sorted: torchvision's ImageFolder sorts the
// class folders of ILSVRC 2012), its index, its WordNet id, torchvision's
// name for it (the model's label: "tabby") and WordNet's synonyms
// ("tabby, tabby cat"), kept for matching. The names are torchvision's
// _IMAGENET_CATEGORIES (torchvision/models/_meta.py, here from Debian's
// python3-torchvision 0.14.1): WordNet's first synonym, except index 134
// "crane bird" and 639 "maillot tank suit", which torchvision renamed so
// that no two classes share a name. The WordNet ids and synonyms are
// Caffe's ILSVRC 2012 synset_words.txt
// (http://dl.caffe.berkeleyvision.org/caffe_ilsvrc12.tar.gz, fetched by
// https://github.com/BVLC/caffe/blob/master/data/ilsvrc12/get_ilsvrc_aux.sh;
// read here from the copy in https://github.com/shicai/MobileNet-Caffe,
// synset.txt), checked line by line against Kaggle's
// LOC_synset_mapping.txt of the ImageNet object localization challenge
// (https://www.kaggle.com/competitions/imagenet-object-localization-challenge/data;
// two public copies differ from Caffe's only in local renames of 134 and
// 638/639).
//
// # Matching
//
// A name matches a label when, case-insensitively and with '_' read as a
// space, it equals the label, one of the label's comma-separated parts,
// or — for a model with ImageNet's labels — one of the class's WordNet
// synonyms or its WordNet id. A name equal to a whole label takes that
// label only ("crane" is index 517, not 134 "crane bird", whose synonym it
// also is); otherwise it takes every label it matches ("grass snake" is
// 55 green snake and 57 garter snake). Names are resolved once, when the
// flags are checked, into the model's exact label strings, so the
// per-frame code compares plain strings.
//
// It imports only the standard library.
package labels
