"""Live use of a trained model: a bounded-context model (lookahead_ms / left_context_ms),
a streaming predictor with incremental features, a WebSocket server with a browser page,
and ONNX export. See lib/live/model.py, stream.py, server.py, onnx_export.py."""
