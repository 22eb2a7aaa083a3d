/**
 * Loaded by mocha before any test file (.mocharc.json "require"): tests start ONNX Runtime in this
 * process, so the variable the worker client sets for its child is set here too.
 */
process.env['ORT_DISABLE_TELEMETRY'] = '1';
