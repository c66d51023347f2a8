// Text tools as an MCP server compiled to a WebAssembly component.
import { log, progress } from 'mcp-manager:plugin/host@0.1.0';

const TOOLS = [
  {
    name: 'slugify',
    description: 'Turns a title into a URL slug.',
    inputSchema: { type: 'object', properties: { title: { type: 'string' } }, required: ['title'] },
  },
  {
    name: 'word_count',
    description: 'Counts the words of a text.',
    inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
  },
];

function text(value, isError = false) {
  return { content: [{ type: 'text', text: value }], isError };
}

function call(name, args) {
  if (name === 'slugify') {
    const slug = String(args.title ?? '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '');
    log('debug', `slugify -> ${slug}`);
    return text(slug);
  }
  if (name === 'word_count') {
    const words = String(args.text ?? '').split(/\s+/).filter(Boolean);
    progress(1, 1, 'counted');
    return text(String(words.length));
  }
  return null;
}

function reply(id, body) {
  return JSON.stringify({ jsonrpc: '2.0', id, ...body });
}

export function handle(message) {
  const request = JSON.parse(message);
  if (request.id === undefined) {
    return undefined;
  }
  const params = request.params ?? {};
  switch (request.method) {
    case 'initialize':
      return reply(request.id, {
        result: {
          protocolVersion: params.protocolVersion ?? '2025-06-18',
          capabilities: { tools: {}, logging: {} },
          serverInfo: { name: 'text-tools-js', version: '1.0.0' },
        },
      });
    case 'tools/list':
      return reply(request.id, { result: { tools: TOOLS } });
    case 'tools/call': {
      let result;
      try {
        result = call(params.name, params.arguments ?? {});
      } catch (e) {
        return reply(request.id, { result: text(`${params.name} failed: ${e}`, true) });
      }
      if (result === null) {
        return reply(request.id, { error: { code: -32602, message: `unknown tool ${params.name}` } });
      }
      return reply(request.id, { result });
    }
    case 'ping':
      return reply(request.id, { result: {} });
    default:
      return reply(request.id, { error: { code: -32601, message: `method not found: ${request.method}` } });
  }
}
