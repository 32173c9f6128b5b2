// deploy/k8s linted offline: every manifest validated against the Kubernetes OpenAPI schemas shipped in
// kubernetes-models (and the Prometheus Operator's for the ServiceMonitor), then the wiring checked across
// files (selectors, ports, probes, downward API, drain budget, config keys). Not run here: a real API server,
// kustomize, or admission (docs/deployment.md says so).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ENV_SPEC } from '@wagw/shared';
import { parseAllDocuments } from 'yaml';

const K8S = fileURLToPath(new URL('../../deploy/k8s/', import.meta.url));

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: Obj) => Validatable;

/** The kubernetes-models class of a manifest (`apps/v1` Deployment -> kubernetes-models/apps/v1/Deployment). */
async function modelOf(doc: Obj): Promise<ModelClass> {
  const { apiVersion, kind } = doc as { apiVersion: string; kind: string };
  const spec = apiVersion === 'monitoring.coreos.com/v1' ? `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}` : `kubernetes-models/${apiVersion}/${kind}`;
  const mod = (await import(spec)) as Record<string, ModelClass>;
  const cls = mod[kind];
  assert.ok(cls !== undefined, `no model for ${apiVersion} ${kind}`);
  return cls;
}

function manifests(): { file: string; doc: Obj }[] {
  const kustomization = parseAllDocuments(readFileSync(path.join(K8S, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as { resources: string[] };
  return kustomization.resources.flatMap((file) =>
    parseAllDocuments(readFileSync(path.join(K8S, file), 'utf8')).map((d) => {
      assert.deepEqual(d.errors, [], `${file} parses`);
      return { file, doc: d.toJS() as Obj };
    }),
  );
}

const subset = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('deploy/k8s manifests', () => {
  const all = manifests();
  const one = (kind: string): Obj => {
    const found = all.filter((m) => m.doc['kind'] === kind);
    assert.equal(found.length, 1, `one ${kind}`);
    return found[0]!.doc;
  };

  test('every manifest validates against its schema, and the validation rejects a broken one', async () => {
    for (const { file, doc } of all) {
      const Model = await modelOf(doc);
      assert.doesNotThrow(() => new Model(doc).validate(), `${file}: ${doc['kind']} ${doc['metadata']?.name}`);
    }
    // The check is live: a wrongly typed field and a missing required one are refused.
    const deployment = one('Deployment');
    const Deployment = await modelOf(deployment);
    assert.throws(() => new Deployment({ ...deployment, spec: { ...deployment['spec'], replicas: 'three' } }).validate());
    const { selector: _, ...noSelector } = deployment['spec'] as Obj;
    assert.throws(() => new Deployment({ ...deployment, spec: noSelector }).validate());
  });

  test('Deployment: N replicas, /ready readiness, /health liveness, drain on SIGTERM within the grace period, ids from the downward API', () => {
    const d = one('Deployment');
    const config = one('ConfigMap')['data'] as Record<string, string>;
    assert.ok(d['spec']['replicas'] >= 3);
    const pod = d['spec']['template'];
    assert.ok(subset(d['spec']['selector']['matchLabels'], pod['metadata']['labels']), 'the selector matches the pod labels');
    const [c] = pod['spec']['containers'] as Obj[];
    assert.deepEqual([c!['readinessProbe']['httpGet']['path'], c!['readinessProbe']['httpGet']['port']], ['/ready', 'http']);
    assert.deepEqual([c!['livenessProbe']['httpGet']['path'], c!['livenessProbe']['httpGet']['port']], ['/health', 'http']);
    assert.ok((c!['ports'] as Obj[]).some((p) => p['name'] === 'http' && p['containerPort'] === 8080));
    assert.ok(c!['lifecycle']['preStop'] !== undefined, 'a preStop hook');
    assert.equal(config['DRAIN_ON_SHUTDOWN'], 'true');
    // The kubelet SIGKILLs after the grace period, which counts the preStop hook too: the router's whole stop
    // (SHUTDOWN_TIMEOUT_MS) plus the hook must fit.
    const preStopSeconds = Number((c!['lifecycle']['preStop']['exec']['command'] as string[])[1]);
    assert.ok(pod['spec']['terminationGracePeriodSeconds'] * 1000 > Number(config['SHUTDOWN_TIMEOUT_MS']) + preStopSeconds * 1000);
    const env = Object.fromEntries((c!['env'] as Obj[]).map((e) => [e['name'], e]));
    assert.equal(env['HOST_ID']['valueFrom']['fieldRef']['fieldPath'], 'metadata.name');
    assert.equal(env['POD_IP']['valueFrom']['fieldRef']['fieldPath'], 'status.podIP');
    assert.equal(env['PUBLIC_URL']['value'], 'http://$(POD_IP):8080');
    // $(POD_IP) expands only from variables defined earlier in the list.
    const names = (c!['env'] as Obj[]).map((e) => e['name']);
    assert.ok(names.indexOf('POD_IP') < names.indexOf('PUBLIC_URL'));
    assert.equal(pod['spec']['securityContext']['runAsNonRoot'], true);
  });

  test('Service, PodDisruptionBudget and ServiceMonitor select the pods and ports that exist', () => {
    const podLabels = one('Deployment')['spec']['template']['metadata']['labels'];
    const svc = one('Service');
    assert.ok(subset(svc['spec']['selector'], podLabels));
    assert.ok((svc['spec']['ports'] as Obj[]).some((p) => p['name'] === 'http' && p['targetPort'] === 'http'));
    const pdb = one('PodDisruptionBudget');
    assert.ok(subset(pdb['spec']['selector']['matchLabels'], podLabels));
    assert.equal(pdb['spec']['maxUnavailable'], 1);
    const sm = one('ServiceMonitor');
    assert.ok(subset(sm['spec']['selector']['matchLabels'], svc['metadata']['labels']));
    const [endpoint] = sm['spec']['endpoints'] as Obj[];
    assert.equal(endpoint!['path'], '/metrics');
    assert.ok((svc['spec']['ports'] as Obj[]).some((p) => p['name'] === endpoint!['port']));
    const secret = one('Secret');
    assert.equal(endpoint!['bearerTokenSecret']['name'], secret['metadata']['name']);
    assert.ok(endpoint!['bearerTokenSecret']['key'] in secret['stringData']);
  });

  test('the ConfigMap and Secret hold only variables the gateway knows, and the API key file the pod mounts', () => {
    const known = new Set(Object.keys(ENV_SPEC));
    const config = one('ConfigMap');
    const secret = one('Secret');
    for (const key of Object.keys(config['data'])) assert.ok(known.has(key), `ConfigMap ${key} is a gateway setting`);
    const secretEnv = Object.keys(secret['stringData']).filter((k) => k !== 'api-keys.json');
    for (const key of secretEnv) assert.ok(known.has(key), `Secret ${key} is a gateway setting`);
    const pod = one('Deployment')['spec']['template']['spec'];
    const mount = (pod['containers'][0]['volumeMounts'] as Obj[]).find((m) => m['name'] === 'api-keys')!;
    const volume = (pod['volumes'] as Obj[]).find((v) => v['name'] === 'api-keys')!;
    assert.equal(volume['secret']['secretName'], secret['metadata']['name']);
    assert.equal(`${mount['mountPath']}/${volume['secret']['items'][0]['path']}`, config['data']['AUTH_API_KEYS_FILE']);
    assert.ok(volume['secret']['items'][0]['key'] in secret['stringData']);
    for (const from of pod['containers'][0]['envFrom'] as Obj[]) {
      const ref = from['configMapRef'] ?? from['secretRef'];
      assert.equal(ref['name'], from['configMapRef'] !== undefined ? config['metadata']['name'] : secret['metadata']['name']);
    }
  });
});
