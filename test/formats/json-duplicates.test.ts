import assert from 'node:assert/strict';
import { firstDuplicateKey } from '../../src/engine/formats/json-duplicates';

describe('firstDuplicateKey', () => {
  it('finds duplicates at any depth, with the path of enclosing keys', () => {
    assert.deepEqual(firstDuplicateKey('{"a":1,"b":2,"a":3}'), { key: 'a', path: [] });
    assert.deepEqual(firstDuplicateKey('{"t":{"dtype":"F32","shape":[1],"dtype":"U8"}}'), { key: 'dtype', path: ['t'] });
    assert.deepEqual(firstDuplicateKey('{"x":[{"k":1},{"k":2,"k":3}]}'), { key: 'k', path: ['x', '[]'] });
  });

  it('compares decoded keys: "\\u0061" and "a" are the same key', () => {
    assert.deepEqual(firstDuplicateKey('{"a":1,"\\u0061":2}'), { key: 'a', path: [] });
  });

  it('no false positives: same key in sibling objects, keys inside string values, escaped quotes', () => {
    assert.equal(firstDuplicateKey('{"a":{"k":1},"b":{"k":2}}'), null);
    assert.equal(firstDuplicateKey('[{"k":1},{"k":2}]'), null);
    assert.equal(firstDuplicateKey('{"s":"\\"s\\": 1, {\\"s\\":2}","t":"a:b"}'), null);
    assert.equal(firstDuplicateKey('{"a\\"":1,"a":2, "a\\\\": 3}'), null);
    assert.equal(firstDuplicateKey('{}'), null);
  });
});
