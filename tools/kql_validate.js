// Static validation of the kusto/ scripts with Microsoft's Kusto language service
// (@kusto/language-service-next, pinned in package.json).
//
// Input (stdin, JSON, written by `python -m ingest kusto validate`): the tables, functions,
// materialized views, statements and update policies that the scripts themselves declare.
// Output (stdout, JSON): {"errors": [{file, line, message}], "statements": n, "policies": n}.
//
// Every statement is parsed and semantically analysed against the schema the scripts declare.
// Unknown commands (which the parser accepts silently) are errors. The query of every update
// policy is analysed and its output must equal the target table's columns, types and order.
"use strict";
const fs = require("fs");
require("@kusto/language-service-next/bridge");
require("@kusto/language-service-next/Kusto.Language.Bridge");

const K = Kusto.Language;
const S = K.Symbols;

const input = JSON.parse(fs.readFileSync(0, "utf8"));
const errors = [];

// The database's name, for the statements that name it (e.g. `.alter-merge database X policy ...`).
const databaseName = input.database || "db";

function globalsWith(members) {
  const db = new S.DatabaseSymbol.ctor(databaseName, members);
  const cluster = new S.ClusterSymbol.$ctor2("cluster", [db]);
  return K.GlobalState.Default.WithCluster(cluster).WithDatabase(db);
}

function analyze(text, globals) {
  const code = K.KustoCode.ParseAndAnalyze(text, globals);
  const diagnostics = Bridge.toArray(code.GetDiagnostics()).filter((d) => d.Severity === "Error");
  return { code, diagnostics };
}

function columnsOf(code) {
  const type = code.ResultType;
  if (!type || !type.Columns) return null;
  return Bridge.toArray(type.Columns).map((c) => ({ name: c.Name, type: c.Type.Name }));
}

function schemaText(columns) {
  return "(" + columns.map((c) => `['${c.name}']:${c.type}`).join(", ") + ")";
}

function report(where, message) {
  errors.push({ file: where.file, line: where.line, message });
}

const members = input.tables.map((t) => new S.TableSymbol.$ctor7(t.name, t.schema, t.doc || ""));
for (const f of input.functions) {
  const parameters = S.Parameter.ParseList(`(${f.params})`);
  members.push(new S.FunctionSymbol.$ctor13(f.name, `{${f.body}}`, S.Tabularity.Tabular, parameters, f.doc || ""));
}
// Views in script order: each one's schema is what its query returns.
for (const v of input.views) {
  const { code, diagnostics } = analyze(v.query, globalsWith(members));
  for (const d of diagnostics) report(v, `materialized view ${v.name}: ${d.Code} ${d.Message}`);
  const columns = columnsOf(code);
  if (columns) members.push(new S.MaterializedViewSymbol.$ctor3(v.name, schemaText(columns), v.query, ""));
}
const globals = globalsWith(members);

for (const statement of input.statements) {
  const { code, diagnostics } = analyze(statement.text, globals);
  for (const d of diagnostics) report(statement, `${d.Code} ${d.Message}`);
  let unknown = false;
  K.Syntax.SyntaxElement.WalkNodes(code.Syntax, (node) => {
    if (node instanceof K.Syntax.UnknownCommand) unknown = true;
  });
  if (unknown) report(statement, `unknown command: ${statement.text.split("\n")[0].slice(0, 80)}`);
}

const tables = new Map(input.tables.map((t) => [t.name, t.columns]));
for (const policy of input.policies) {
  const { code, diagnostics } = analyze(policy.query, globals);
  for (const d of diagnostics) report(policy, `update policy of ${policy.table}: ${d.Code} ${d.Message}`);
  const got = columnsOf(code) || [];
  const want = tables.get(policy.table) || [];
  const show = (cols) => cols.map((c) => `${c.name}:${c.type}`).join(", ");
  if (show(got) !== show(want)) {
    report(policy, `update policy of ${policy.table} returns (${show(got)}) but the table is (${show(want)})`);
  }
}

// Result columns of queries the caller asks about (e.g. to compare a local equivalent with production).
const probes = {};
for (const probe of input.probes || []) {
  const { code, diagnostics } = analyze(probe, globals);
  probes[probe] = diagnostics.length ? null : columnsOf(code);
}

process.stdout.write(
  JSON.stringify({ errors, statements: input.statements.length, policies: input.policies.length, probes }) + "\n",
);
