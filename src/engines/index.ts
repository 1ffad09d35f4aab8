export * from './tfjs/index.js';
export { loadOnnxModel, type OnnxModel, type LoadOnnxOptions } from './onnx/model.js';
export { exportToOnnx, saveOnnx, type ExportOnnxOptions } from './onnx/export.js';
export { connectHttpModel, type HttpModel, type HttpModelOptions } from './http/model.js';
export { serveOip, type OipServer, type OipServerOptions } from './http/oip-server.js';
export { openModel, type OpenedModel, type OpenModelOptions } from './open.js';
