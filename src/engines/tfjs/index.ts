export { initTfjs } from './backend.js';
export { TfjsModel } from './model.js';
export { saveTfjsModel, loadTfjsModel, type ModelCard, MODEL_JSON, WEIGHTS_BIN, CARD_JSON } from './io.js';
export { fitDefaults } from './train.js';
