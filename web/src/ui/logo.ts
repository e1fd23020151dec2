// The hashmesh mark: three stacked hash boards on Bitcoin orange (the favicon's drawing),
// inline so it shows without a font that has a pick-axe glyph.

/** The logo as an inline SVG in a span. */
export function logo(): HTMLElement {
  const span = document.createElement("span");
  span.className = "logo";
  span.setAttribute("aria-hidden", "true");
  span.innerHTML =
    '<svg viewBox="0 0 32 32" width="22" height="22"><rect width="32" height="32" rx="7" fill="#f7931a"/>' +
    '<path d="M9 9h14v4H9zM9 15h14v4H9zM9 21h14v2H9z" fill="#fff"/></svg>';
  return span;
}
