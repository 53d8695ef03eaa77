// The sandbox's healing demonstration: the example intake service starts crashing, er-triage-healing
// finds it, diagnoses it and restarts its pods (through evictions its PodDisruptionBudget allows), and
// the audit trail is read back and verified. Returns what to show, with the commands that show it again.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { verifyAuditTrail } from '../../state/audit.ts';
import { defaultToolsDir } from './control-plane.ts';
import { failPod, livePods } from './pod-failures.ts';
import { waitFor } from './process.ts';

const run = promisify(execFile);

export async function showHealing(
  kubeconfig: string,
  client: KubeClient,
  postgresUrl: string,
  schema = 'aurora_sandbox',
): Promise<string> {
  const kubectl = join(defaultToolsDir, 'bin', 'kubectl');
  const namespace = 'emergency';
  const selector = 'app.kubernetes.io/name=er-intake';
  await waitFor(
    'er-intake to be ready',
    async () => {
      const d = await client.get<KubeObject & { status?: { readyReplicas?: number } }>({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'er-intake', namespace },
      });
      return (d?.status?.readyReplicas ?? 0) >= 3 ? true : undefined;
    },
    { timeoutMs: 60_000 },
  );
  const [crashing] = await livePods(client, namespace, selector);
  if (!crashing) throw new Error('er-intake has no pod');
  console.log(
    `  er-intake: its pod ${crashing.metadata.name} starts crashing (a crash loop written into its status, as a kubelet reports one)`,
  );
  await failPod(client, crashing, { kind: 'CrashLoop', restarts: 4 });
  const db = new pg.Pool({ connectionString: postgresUrl, max: 1 });
  try {
    const outcome = await waitFor(
      'er-triage-healing to act on er-intake',
      async () => {
        const { rows } = await db
          .query<{ outcome: string }>(
            `select outcome from ${schema}.audit_log where target = 'er-intake' and type = 'Outcome' order by seq desc limit 1`,
          )
          .catch(() => ({ rows: [] as Array<{ outcome: string }> }));
        return rows[0]?.outcome;
      },
      { timeoutMs: 60_000 },
    );
    console.log(`  er-triage-healing acted on er-intake: ${outcome}`);
    const { stdout: describe } = await run(kubectl, [
      ...['--kubeconfig', kubeconfig, '-n', namespace, 'describe', 'healingpolicy', 'er-triage-healing'],
    ]);
    const events = describe.slice(describe.indexOf('Events:')).trimEnd();
    // This sandbox's policy only: the schema keeps earlier sandboxes' rows too.
    const policy = await client.get({
      apiVersion: 'aurora.health/v1alpha1',
      kind: 'HealingPolicy',
      metadata: { name: 'er-triage-healing', namespace },
    });
    const { rows } = await db.query<Record<string, string>>(
      `select seq, to_char(at, 'HH24:MI:SS') as at, type, target, action, outcome, cause,
              left(coalesce(message, ''), 60) as message
       from ${schema}.audit_log
       where seq in (select seq from ${schema}.audit_trail where policy_uid = $1) order by seq`,
      [policy?.metadata.uid ?? ''],
    );
    const verified = await verifyAuditTrail({ url: postgresUrl, schema });
    const table = [
      'SEQ  AT        TYPE        TARGET     ACTION      OUTCOME  CAUSE      MESSAGE',
      ...rows.map((r) =>
        [
          String(r.seq).padEnd(4),
          String(r.at).padEnd(9),
          String(r.type).padEnd(11),
          String(r.target ?? '').padEnd(10),
          String(r.action ?? '').padEnd(11),
          String(r.outcome ?? '').padEnd(8),
          String(r.cause ?? '').padEnd(10),
          r.message,
        ].join(' '),
      ),
    ].join('\n');
    return `
A failing service healed: an er-intake pod crashed; er-triage-healing diagnosed a crash loop and restarted
it (an eviction, within its PodDisruptionBudget), writing the intent before acting and the outcome after.

$ kubectl -n emergency describe healingpolicy er-triage-healing   (its Events)
${events}

$ psql '${postgresUrl}' -c 'select seq, at, type, target, action, outcome, cause, message from ${schema}.audit_log order by seq'
${table}

$ npm run audit:verify -- --postgres-url '${postgresUrl}' --schema ${schema}
${verified.ok ? `✓ ${verified.rows} rows, chain intact${verified.head ? `; head ${verified.head.seq}:${verified.head.hash}` : ''}` : `✗ ${verified.problem} at row ${verified.seq}: ${verified.detail}`}
`;
  } finally {
    await db.end();
  }
}
