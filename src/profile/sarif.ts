/**
 * Lint results as SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format), the form
 * CI systems and code-scanning dashboards read to show findings on the file.
 *
 * @module sarif
 */
import type { ProfileIssue } from '../errors.js';
import type { LintResult } from './lint.js';
import { LINT_RULES, type LintRule } from './rules.js';

/** One linted file: its result, or why it could not be read. */
export interface SarifInput {
  file: string;
  result?: LintResult;
  error?: { code: string; message: string };
}

const LEVEL: Record<ProfileIssue['severity'], 'error' | 'warning' | 'note'> = { error: 'error', warning: 'warning', info: 'note' };

/**
 * A SARIF 2.1.0 log of one lint run. `uri`s are the file names as given.
 * @example
 * const result = await lintProfile(readFileSync('wifi.mobileconfig'))
 * writeFileSync('lint.sarif', JSON.stringify(lintToSarif([{ file: 'wifi.mobileconfig', result }])))
 */
export function lintToSarif(inputs: SarifInput[], options: { version?: string } = {}): Record<string, unknown> {
  const ids = Object.keys(LINT_RULES);
  const used = new Set(inputs.flatMap((i) => i.result?.findings.map((f) => f.rule) ?? []));
  // Findings of rules not in the catalogue (none today) still get a rule entry.
  for (const r of used) if (!ids.includes(r)) ids.push(r);
  const rules = ids.map((id) => ({
    id,
    shortDescription: { text: (LINT_RULES as Record<string, LintRule>)[id]?.description ?? id },
    defaultConfiguration: { level: LEVEL[(LINT_RULES as Record<string, LintRule>)[id]?.severity ?? 'warning'] },
  }));
  const index = new Map(ids.map((id, i) => [id, i]));
  const results = inputs.flatMap((input) =>
    (input.result?.findings ?? []).map((f) => ({
      ruleId: f.rule,
      ruleIndex: index.get(f.rule) ?? 0,
      level: LEVEL[f.severity],
      message: { text: `${f.path}: ${f.message}` },
      locations: [
        {
          physicalLocation: { artifactLocation: { uri: input.file } },
          logicalLocations: [{ fullyQualifiedName: f.path, kind: 'member' }],
        },
      ],
    })),
  );
  const failures = inputs.filter((i) => i.error);
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'profilesmith',
            ...(options.version ? { version: options.version } : {}),
            informationUri: 'https://www.npmjs.com/package/profilesmith',
            rules,
          },
        },
        invocations: [
          {
            executionSuccessful: failures.length === 0,
            toolExecutionNotifications: failures.map((i) => ({
              level: 'error',
              message: { text: `${i.file}: ${i.error!.message}` },
              descriptor: { id: i.error!.code },
            })),
          },
        ],
        artifacts: inputs.map((i) => ({ location: { uri: i.file } })),
        results,
      },
    ],
  };
}
