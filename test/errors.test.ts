import { strict as assert } from 'node:assert';
import { MoeInspectorError } from '../src/engine/errors';

describe('MoeInspectorError', () => {
  it('names the file, the tensor and the problem in one message', () => {
    const e = new MoeInspectorError('format', 'data_offsets overlap', { file: '/m/model.safetensors', tensor: 'w' });
    assert.equal(e.message, '/m/model.safetensors: tensor "w": data_offsets overlap');
    assert.equal(e.code, 'format');
  });
});
