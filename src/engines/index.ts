export * from './tfjs/index.js';
