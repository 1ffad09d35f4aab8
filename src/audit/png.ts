// The encoder moved to core so that areas below audit (privacy's inversion images) can use it.
export { crc32, encodeGreyPng, greyPngDataUrl } from '../core/png.js';
