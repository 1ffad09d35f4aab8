export { runAudit, type AuditOptions, type AuditResult } from './run.js';
export { registerAuditSection, auditSections, type AuditSection, type AuditContext } from './sections.js';
export { renderHtml } from './render-html.js';
export { renderSummary, type SummaryOptions } from './render-terminal.js';
export { cacheDir } from './default-target.js';
