import { strict as assert } from 'node:assert';
import { MoeInspectorError } from '../src/engine/errors';

describe('MoeInspectorError', () => {
  it('names the file, the tensor and the problem in one message', () => {
    const e = new MoeInspectorError('format', 'data_offsets overlap', { file: '/m/model.safetensors', tensor: 'w' });
    assert.equal(e.message, '/m/model.safetensors: tensor "w": data_offsets overlap');
    assert.equal(e.code, 'format');
  });

  it('cuts a hostile tensor name to a short excerpt, saying how long it was', () => {
    const e = new MoeInspectorError('format', 'entry is 5, not an object', { file: '/m/x.safetensors', tensor: 'k'.repeat(100_000) });
    assert.ok(e.message.length < 300, `${e.message.length} characters`);
    assert.match(e.message, /^\/m\/x\.safetensors: tensor "k{200}\.\.\. \(100000 characters\)": entry is 5, not an object$/);
  });
});
