/** Reads the VS Code theme (CSS variables the webview host sets on <html>) into chart colours. */
import { EXPORT_THEME, type ChartTheme } from './charts';

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v === '' ? fallback : v;
}

export function currentTheme(): ChartTheme {
  const highContrast = document.body.classList.contains('vscode-high-contrast') || document.body.classList.contains('vscode-high-contrast-light');
  const fontSize = parseFloat(cssVar('--vscode-font-size', '13')) || 13;
  return {
    foreground: cssVar('--vscode-editor-foreground', EXPORT_THEME.foreground),
    // transparent: the chart sits on the panel's own background, whatever the theme
    background: 'transparent',
    grid: highContrast ? cssVar('--vscode-contrastBorder', '#6fc3df') : cssVar('--vscode-editorWidget-border', EXPORT_THEME.grid),
    font: cssVar('--vscode-font-family', EXPORT_THEME.font),
    fontSize,
    accent: EXPORT_THEME.accent,
    band: cssVar('--vscode-descriptionForeground', EXPORT_THEME.band),
    // fixed colour-blind-safe palette (Okabe-Ito): the theme's chart colours include a red/green pair
    palette: EXPORT_THEME.palette,
  };
}

/** Calls `onChange` when the user switches theme (VS Code swaps the body class). */
export function onThemeChange(onChange: () => void): void {
  new MutationObserver(onChange).observe(document.body, { attributes: true, attributeFilter: ['class'] });
}
