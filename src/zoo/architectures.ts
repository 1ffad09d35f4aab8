import * as tfl from '@tensorflow/tfjs-layers';
import { BulwarkError } from '../core/index.js';
import { TfjsModel } from '../engines/index.js';

export const ZOO_ARCHITECTURES = ['logistic', 'mlp', 'cnn'] as const;
export type ZooArchitecture = (typeof ZOO_ARCHITECTURES)[number];

export interface ZooOptions {
  inputShape: readonly number[];
  numClasses: number;
  classNames?: readonly string[];
  seed?: number;
  name?: string;
}

export function isZooArchitecture(name: string): name is ZooArchitecture {
  return (ZOO_ARCHITECTURES as readonly string[]).includes(name);
}

/**
 * Built-in classifiers with seeded initial weights. The MLP is 784-256-10 on digits; the CNN
 * is small enough to train in minutes on WebAssembly and still pass 98% on digits.
 */
export function createZooModel(arch: string, opts: ZooOptions): TfjsModel {
  if (!isZooArchitecture(arch)) {
    throw new BulwarkError('E_UNKNOWN_MODEL', `unknown model '${arch}'; the built-in models are: ${ZOO_ARCHITECTURES.join(', ')}`);
  }
  const seed = opts.seed ?? 42;
  let s = seed;
  const init = () => tfl.initializers.glorotUniform({ seed: s++ });
  const inputShape = [...opts.inputShape];
  const k = opts.numClasses;
  if (k < 2) throw new BulwarkError('E_DATA_SHAPE', `a classifier needs at least 2 classes; the data has ${k}`);
  const layers: tfl.layers.Layer[] = [];
  if (arch === 'cnn') {
    if (inputShape.length !== 3) {
      throw new BulwarkError('E_DATA_SHAPE', `the cnn model needs image inputs [height, width, channels], but samples have shape [${inputShape.join(', ')}]; use mlp or logistic for tabular data`);
    }
    layers.push(
      tfl.layers.conv2d({ inputShape, filters: 16, kernelSize: 5, activation: 'relu', kernelInitializer: init(), name: 'conv1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }),
      tfl.layers.conv2d({ filters: 32, kernelSize: 5, activation: 'relu', kernelInitializer: init(), name: 'conv2' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({ units: 128, activation: 'relu', kernelInitializer: init(), name: 'dense1' }),
      tfl.layers.dropout({ rate: 0.25, seed: s++, name: 'dropout1' }),
    );
  } else {
    // Flatten only images; tabular rows are already flat (and Flatten refuses rank-1 input).
    layers.push(
      inputShape.length > 1
        ? tfl.layers.flatten({ inputShape, name: 'flatten' })
        : tfl.layers.inputLayer({ inputShape, name: 'input' }),
    );
    if (arch === 'mlp') {
      // Dropout: with 8,000 training digits the plain 784-256-10 net overfits within a few epochs.
      layers.push(
        tfl.layers.dense({ units: 256, activation: 'relu', kernelInitializer: init(), name: 'dense1' }),
        tfl.layers.dropout({ rate: 0.3, seed: s++, name: 'dropout1' }),
      );
    }
  }
  layers.push(tfl.layers.dense({ units: k, activation: 'softmax', kernelInitializer: init(), name: 'output' }));
  const net = tfl.sequential({ layers, name: arch });
  return new TfjsModel(net, { name: opts.name ?? `${arch} (untrained)`, classNames: opts.classNames });
}
