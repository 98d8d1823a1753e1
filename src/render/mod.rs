//! Renderers: ASCII tree, Graphviz DOT, Mermaid, JSON.
