import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type Tensor = onnxProto.onnx.ITensorProto;
type Graph = onnxProto.onnx.IGraphProto;
type Node = onnxProto.onnx.INodeProto;

/**
 * The names of tensors an ONNX model keeps outside its file (external data: a path next to the model
 * that onnxruntime would open). A file from an untrusted source must carry all its weights: an
 * external path could name any file the loader can read. Every place a tensor can sit is searched:
 * initializers, sparse initializers, node attributes (constants), subgraphs and functions.
 * Throws when the bytes are not an ONNX model at all (the loader reports that better).
 */
export function externalTensors(bytes: Uint8Array): string[] {
  const model = onnx.ModelProto.decode(bytes);
  const found: string[] = [];
  const tensor = (t: Tensor | null | undefined) => {
    if (!t) return;
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData?.length ?? 0) > 0)
      found.push(t.name || '(unnamed)');
  };
  const sparse = (s: onnxProto.onnx.ISparseTensorProto | null | undefined) => {
    tensor(s?.values);
    tensor(s?.indices);
  };
  const nodes = (list: Node[] | null | undefined) => {
    for (const node of list ?? []) {
      for (const a of node.attribute ?? []) {
        tensor(a.t);
        for (const t of a.tensors ?? []) tensor(t);
        sparse(a.sparseTensor);
        for (const s of a.sparseTensors ?? []) sparse(s);
        graph(a.g);
        for (const g of a.graphs ?? []) graph(g);
      }
    }
  };
  const graph = (g: Graph | null | undefined) => {
    if (!g) return;
    for (const t of g.initializer ?? []) tensor(t);
    for (const s of g.sparseInitializer ?? []) sparse(s);
    nodes(g.node);
  };
  graph(model.graph);
  for (const f of model.functions ?? []) nodes(f.node);
  return found;
}
