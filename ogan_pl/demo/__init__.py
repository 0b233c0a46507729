"""`ogan-demo`: a local web page over a trained model (sample, reconstruct, invert, interpolate,
edit). app.py holds what the page does, server.py serves it, page/ is the page itself."""
