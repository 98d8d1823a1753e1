//! [`IdIndex`]: node id → vertex, the graph's one hash table.
//!
//! A `HashMap<NodeId, NodeIndex>` keeps a 16-byte id handle and a 4-byte index
//! per bucket (24 bytes with padding), and hashbrown rounds the bucket count up
//! to a power of two: at 10^6 nodes that was 2^21 buckets of 25 bytes, 52 bytes
//! per node, a sixth of a reopened tree's memory. The vertices already hold
//! every id, so this table holds only the vertex number (4 bytes, 5 with the
//! control byte: 10 bytes per node at 10^6) and compares ids through the graph.
//! Each call therefore takes the vertices it indexes.

use std::hash::BuildHasher as _;

use hashbrown::HashTable;
use petgraph::stable_graph::{NodeIndex, StableGraph};

use crate::ids::NodeId;
use crate::store::Topology;

use super::graph::{EdgeKind, Vertex};

/// The vertices an [`IdIndex`] points into.
pub(super) type Vertices = StableGraph<Vertex, EdgeKind>;

/// Maps node ids to vertices of one [`Vertices`]; every entry names a present
/// vertex, and no two entries name vertices with the same id.
#[derive(Debug, Clone, Default)]
pub(super) struct IdIndex {
    table: HashTable<u32>,
    /// Seeded per process, as std's maps are: ids come from servers and
    /// imported files, so a fixed hash would let an input aim at collisions.
    hasher: foldhash::fast::RandomState,
}

impl IdIndex {
    /// An empty index with room for `n` ids.
    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            table: HashTable::with_capacity(n),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The index of a graph whose vertex `k` will be `records[k]`, built from
    /// the records alone, so that it can be built on another thread while
    /// the vertices are added (a reopen's two cache-miss-bound passes then use
    /// both cores). `None` if two records share an id, or there are more than
    /// `u32` can number: the caller then takes the path that drops duplicates.
    pub(super) fn of_records(records: &[Topology]) -> Option<Self> {
        let mut index = Self::with_capacity(records.len());
        let hasher = index.hasher;
        let id_of = |v: u32| records.get(v as usize).map(|r| &r.id);
        for (k, r) in records.iter().enumerate() {
            let k = u32::try_from(k).ok()?;
            let hash = hasher.hash_one(r.id.as_str());
            match index.table.entry(
                hash,
                |&v| id_of(v) == Some(&r.id),
                |&v| id_of(v).map_or(0, |id| hasher.hash_one(id.as_str())),
            ) {
                hashbrown::hash_table::Entry::Occupied(_) => return None,
                hashbrown::hash_table::Entry::Vacant(entry) => {
                    entry.insert(k);
                }
            }
        }
        Some(index)
    }

    /// The vertex of `id`.
    pub(super) fn get(&self, vertices: &Vertices, id: &NodeId) -> Option<NodeIndex> {
        let hash = self.hash(id);
        self.table
            .find(hash, |&v| vertex_id(vertices, v) == Some(id))
            .map(|&v| NodeIndex::new(v as usize))
    }

    /// Adds `vertex`, whose id is `id`, unless an entry has that id already:
    /// then returns that entry's vertex and changes nothing.
    pub(super) fn insert(
        &mut self,
        vertices: &Vertices,
        id: &NodeId,
        vertex: NodeIndex,
    ) -> std::result::Result<(), NodeIndex> {
        let hash = self.hash(id);
        let hasher = &self.hasher;
        match self.table.entry(
            hash,
            |&v| vertex_id(vertices, v) == Some(id),
            |&v| vertex_id(vertices, v).map_or(0, |id| hasher.hash_one(id.as_str())),
        ) {
            hashbrown::hash_table::Entry::Occupied(entry) => {
                Err(NodeIndex::new(*entry.get() as usize))
            }
            hashbrown::hash_table::Entry::Vacant(entry) => {
                // Vertex numbers fit in u32: petgraph's default index type.
                entry.insert(vertex.index() as u32);
                Ok(())
            }
        }
    }

    /// Removes `id`'s entry and returns its vertex. Call it before the vertex
    /// leaves the graph: the lookup compares ids through the vertices.
    pub(super) fn remove(&mut self, vertices: &Vertices, id: &NodeId) -> Option<NodeIndex> {
        let hash = self.hash(id);
        match self
            .table
            .find_entry(hash, |&v| vertex_id(vertices, v) == Some(id))
        {
            Ok(entry) => {
                let (v, _) = entry.remove();
                Some(NodeIndex::new(v as usize))
            }
            Err(_) => None,
        }
    }

    /// The number of ids.
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// Every indexed vertex, in no particular order.
    pub(super) fn vertices(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.table.iter().map(|&v| NodeIndex::new(v as usize))
    }

    fn hash(&self, id: &NodeId) -> u64 {
        self.hasher.hash_one(id.as_str())
    }
}

fn vertex_id(vertices: &Vertices, v: u32) -> Option<&NodeId> {
    vertices
        .node_weight(NodeIndex::new(v as usize))
        .map(|vertex| &vertex.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Timestamp;

    fn add(vertices: &mut Vertices, index: &mut IdIndex, id: &str) -> NodeIndex {
        let id = NodeId::new(id).unwrap();
        let v = vertices.add_node(Vertex {
            id: id.clone(),
            created_at: Timestamp(0),
        });
        index.insert(vertices, &id, v).unwrap();
        v
    }

    #[test]
    fn finds_every_id_after_growing_and_refuses_duplicates() {
        let mut vertices = Vertices::default();
        // Capacity 0: every id added makes the table grow and rehash through
        // the vertices.
        let mut index = IdIndex::default();
        let added: Vec<NodeIndex> = (0..1000)
            .map(|i| add(&mut vertices, &mut index, &format!("resp_{i}")))
            .collect();
        assert_eq!(index.len(), 1000);
        for (i, &v) in added.iter().enumerate() {
            let id = NodeId::new(&format!("resp_{i}")).unwrap();
            assert_eq!(index.get(&vertices, &id), Some(v));
        }
        let missing = NodeId::new("resp_x").unwrap();
        assert_eq!(index.get(&vertices, &missing), None);
        // A second vertex with a present id is refused, naming the first.
        let dup = NodeId::new("resp_7").unwrap();
        let other = vertices.add_node(Vertex {
            id: dup.clone(),
            created_at: Timestamp(1),
        });
        assert_eq!(index.insert(&vertices, &dup, other), Err(added[7]));
        assert_eq!(index.len(), 1000);
    }

    #[test]
    fn removes_an_id_and_only_that_one() {
        let mut vertices = Vertices::default();
        let mut index = IdIndex::with_capacity(4);
        let a = add(&mut vertices, &mut index, "a");
        let b = add(&mut vertices, &mut index, "b");
        let id_a = NodeId::new("a").unwrap();
        assert_eq!(index.remove(&vertices, &id_a), Some(a));
        vertices.remove_node(a);
        assert_eq!(index.remove(&vertices, &id_a), None);
        assert_eq!(index.get(&vertices, &id_a), None);
        assert_eq!(index.get(&vertices, &NodeId::new("b").unwrap()), Some(b));
        assert_eq!(index.vertices().collect::<Vec<_>>(), vec![b]);
    }
}
