import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { findCachedSnapshot, hfCacheRoot, openCachedModel, parseModelId } from '../../src/engine/model/hf-cache';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { f32Bytes, rejectsWith, safetensorsFile, TempDir } from '../formats/helpers';

const COMMIT_A = 'a'.repeat(40);
const COMMIT_B = '0123456789abcdef0123456789abcdef01234567';

describe('Hugging Face cache', () => {
  describe('cache root from the environment', () => {
    it('HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > $HF_HOME/hub > $XDG_CACHE_HOME/huggingface/hub > ~/.cache/huggingface/hub', () => {
      const all = { HF_HUB_CACHE: '/a', HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c', XDG_CACHE_HOME: '/d', HOME: '/h' };
      assert.equal(hfCacheRoot(all), '/a');
      assert.equal(hfCacheRoot({ ...all, HF_HUB_CACHE: undefined }), '/b');
      assert.equal(hfCacheRoot({ HF_HOME: '/c', XDG_CACHE_HOME: '/d', HOME: '/h' }), '/c/hub');
      assert.equal(hfCacheRoot({ XDG_CACHE_HOME: '/d', HOME: '/h' }), '/d/huggingface/hub');
      assert.equal(hfCacheRoot({ HOME: '/h' }), '/h/.cache/huggingface/hub');
      assert.equal(hfCacheRoot({}), join(homedir(), '.cache/huggingface/hub'));
    });

    it('expands ~ and $VARS as huggingface_hub does; empty variables count as unset', () => {
      assert.equal(hfCacheRoot({ HF_HUB_CACHE: '~/hfc', HOME: '/home/u' }), '/home/u/hfc');
      assert.equal(hfCacheRoot({ HF_HOME: '$SCRATCH/hf', SCRATCH: '/scratch' }), '/scratch/hf/hub');
      assert.equal(hfCacheRoot({ HF_HOME: '${SCRATCH}/hf', SCRATCH: '/s2' }), '/s2/hf/hub');
      assert.equal(hfCacheRoot({ HF_HOME: '/x/$UNSET_VAR' }), '/x/$UNSET_VAR/hub');
      assert.equal(hfCacheRoot({ HF_HUB_CACHE: '', HF_HOME: '/c' }), '/c/hub');
    });
  });

  it('parseModelId: org/name[@revision]; paths and malformed ids are not model ids', () => {
    assert.deepEqual(parseModelId('openai/gpt-oss-20b'), { repo: 'openai/gpt-oss-20b', revision: null });
    assert.deepEqual(parseModelId('Qwen/Qwen1.5-MoE-A2.7B@v1.0'), { repo: 'Qwen/Qwen1.5-MoE-A2.7B', revision: 'v1.0' });
    assert.deepEqual(parseModelId(`allenai/OLMoE-1B-7B-0924@${COMMIT_B}`), { repo: 'allenai/OLMoE-1B-7B-0924', revision: COMMIT_B });
    assert.deepEqual(parseModelId('org/name@refs/pr/1'), { repo: 'org/name', revision: 'refs/pr/1' });
    for (const bad of ['gpt2', './models/x', '/abs/path', 'a/b/c', 'org/..', '../x', 'org/name@', 'org/name@../../etc', 'org/a--b', 'org/-x', 'org/x.', 'org/na me', '']) {
      assert.equal(parseModelId(bad), null, bad);
    }
  });

  describe('a cache laid out like huggingface_hub does', () => {
    let tmp: TempDir;
    let env: NodeJS.ProcessEnv;
    let repoDir: string;
    before(() => {
      tmp = new TempDir();
      env = { HF_HOME: tmp.path };
      repoDir = join(tmp.path, 'hub', 'models--acme--tiny-moe');
      mkdirSync(join(repoDir, 'blobs'), { recursive: true });
      mkdirSync(join(repoDir, 'refs'), { recursive: true });
      const weights = safetensorsFile([{ name: 'w', dtype: 'F32', shape: [2], data: f32Bytes([1.5, -3]) }]);
      writeFileSync(join(repoDir, 'blobs', 'cfgetag'), JSON.stringify({ model_type: 'mixtral' }));
      writeFileSync(join(repoDir, 'blobs', 'weightsetag'), weights);
      // Commit A: complete. Commit B: config only (a partial download).
      for (const [commit, files] of [[COMMIT_A, { 'config.json': 'cfgetag', 'model.safetensors': 'weightsetag' }], [COMMIT_B, { 'config.json': 'cfgetag' }]] as const) {
        const snap = join(repoDir, 'snapshots', commit);
        mkdirSync(snap, { recursive: true });
        for (const [name, blob] of Object.entries(files)) symlinkSync(join('..', '..', 'blobs', blob), join(snap, name));
      }
      writeFileSync(join(repoDir, 'refs', 'main'), COMMIT_A); // no newline, as huggingface_hub writes it
      writeFileSync(join(repoDir, 'refs', 'partial'), `${COMMIT_B}\n`);
      mkdirSync(join(repoDir, 'refs', 'refs', 'pr'), { recursive: true });
      writeFileSync(join(repoDir, 'refs', 'refs', 'pr', '1'), COMMIT_A);
      writeFileSync(join(repoDir, 'refs', 'broken'), 'not-a-commit');
    });
    after(() => tmp.remove());

    it('resolves refs/<rev> (default main, trailing whitespace stripped, nested refs) and commit hashes', async () => {
      assert.deepEqual(await findCachedSnapshot('acme/tiny-moe', null, env), { dir: join(repoDir, 'snapshots', COMMIT_A), commit: COMMIT_A, repoDir });
      assert.equal((await findCachedSnapshot('acme/tiny-moe', 'partial', env))!.commit, COMMIT_B);
      assert.equal((await findCachedSnapshot('acme/tiny-moe', 'refs/pr/1', env))!.commit, COMMIT_A);
      assert.equal((await findCachedSnapshot('acme/tiny-moe', COMMIT_B, env))!.dir, join(repoDir, 'snapshots', COMMIT_B));
      assert.equal(await findCachedSnapshot('acme/tiny-moe', 'dev', env), null);
      assert.equal(await findCachedSnapshot('acme/tiny-moe', 'broken', env), null);
      assert.equal(await findCachedSnapshot('acme/tiny-moe', 'f'.repeat(40), env), null);
      assert.equal(await findCachedSnapshot('acme/other', null, env), null);
    });

    it('opens a cached model at its commit; snapshot symlinks into ../../blobs are allowed', async () => {
      const ckpt = (await openCachedModel('acme/tiny-moe', env))!;
      assert.equal(ckpt.revision, COMMIT_A);
      assert.equal(ckpt.source, 'acme/tiny-moe');
      assert.deepEqual(ckpt.config, { model_type: 'mixtral' });
      assert.deepEqual(await ckpt.readTensorBytes('w'), f32Bytes([1.5, -3]));
      await ckpt.close();
      // The user may also point at the snapshot folder itself.
      const direct = await openCheckpoint(join(repoDir, 'snapshots', COMMIT_A));
      assert.deepEqual(await direct.readTensorBytes('w'), f32Bytes([1.5, -3]));
      await direct.close();
    });

    it('HF_HUB_CACHE pointing at the hub folder finds the same model', async () => {
      const ckpt = (await openCachedModel(`acme/tiny-moe@${COMMIT_A}`, { HF_HUB_CACHE: join(tmp.path, 'hub') }))!;
      assert.equal(ckpt.revision, COMMIT_A);
      await ckpt.close();
    });

    it('not cached, or only partly (config without weights): null, so the caller can go to the hub', async () => {
      assert.equal(await openCachedModel('acme/tiny-moe@partial', env), null);
      assert.equal(await openCachedModel('acme/absent', env), null);
      assert.equal(await openCachedModel('./not/an/id', env), null);
    });

    it('a snapshot link that leaves the repo folder is refused', async () => {
      const evil = join(tmp.path, 'hub', 'models--acme--evil');
      const snap = join(evil, 'snapshots', COMMIT_A);
      mkdirSync(snap, { recursive: true });
      mkdirSync(join(evil, 'refs'));
      writeFileSync(join(evil, 'refs', 'main'), COMMIT_A);
      // Points into ANOTHER repo's blobs: outside models--acme--evil.
      symlinkSync(join('..', '..', '..', 'models--acme--tiny-moe', 'blobs', 'cfgetag'), join(snap, 'config.json'));
      symlinkSync(join('..', '..', '..', 'models--acme--tiny-moe', 'blobs', 'weightsetag'), join(snap, 'model.safetensors'));
      await rejectsWith(openCachedModel('acme/evil', env), 'hostile-path', 'outside the model folder');
    });
  });
});
