// Reload or restart: nats-server reloads all-or-nothing, so one non-reloadable key means restart.
import { describe, expect, it } from 'vitest';
import { classifyConfigChange, flattenNatsConf } from '../../controller/plan/nats-conf.js';

const base =
  'server_name: "a"\nport: 4222\nhttp_port: 8222\ndebug: false\nauthorization {\n  token: "t1"\n}\njetstream {\n  store_dir: "/data/js"\n  max_memory_store: 1GB\n}\n';

describe('classifyConfigChange', () => {
  it.each([
    ['identical', base, 'none'],
    ['comments only', `# header\n${base}`, 'none'],
    ['token', base.replace('t1', 't2'), 'reload'],
    ['logging', base.replace('debug: false', 'debug: true'), 'reload'],
    ['max_payload added', `${base}max_payload: 2MB\n`, 'reload'],
    ['JetStream limit up', base.replace('1GB', '2GB'), 'reload'],
    ['JetStream limit down', base.replace('1GB', '512MB'), 'restart'],
    ['server_name', base.replace('"a"', '"b"'), 'restart'],
    ['store_dir', base.replace('/data/js', '/data/other'), 'restart'],
    ['lame duck', `${base}lame_duck_duration: "45s"\n`, 'restart'],
    ['auth and server_name together', base.replace('t1', 't2').replace('"a"', '"b"'), 'restart'],
  ])('%s -> %s', (_t, after, action) => {
    expect(classifyConfigChange(base, after).action).toBe(action);
  });

  it('restarts when the old config is not one it can read', () => {
    expect(classifyConfigChange('include ./x.conf\n', base).action).toBe('restart');
    expect(flattenNatsConf('a {\n')).toBeUndefined();
  });
});
