// Reference implementations for proofmint's storage tests (JavaScript, from npm; no network):
//   node tools/unixfs-ref.mjs cid FILE CID_VERSION [CHUNK_SIZE MAX_LINKS]
//       the root CID ipfs-unixfs-importer computes for FILE with Kubo's `ipfs add` settings
//       (CIDv0: the unixfs-v0-2015 profile, dag-pb leaves; CIDv1: raw leaves)
//   node tools/unixfs-ref.mjs car FILE.car
//       reads a CAR with @ipld/car, checks every block's sha2-256 against its CID, prints JSON
//       {"roots": [...], "blocks": [...]} in file order
import { readFile } from 'node:fs/promises'
import { createReadStream } from 'node:fs'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CarReader } from '@ipld/car'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'uint8arrays/equals'

const [mode, path, ...rest] = process.argv.slice(2)
if (mode === 'cid') {
  const version = Number(rest[0])
  const chunkSize = Number(rest[1] ?? 262144)
  const maxChildrenPerNode = Number(rest[2] ?? 174)
  const options = {
    cidVersion: version,
    rawLeaves: version === 1,
    chunker: fixedSize({ chunkSize }),
    layout: balanced({ maxChildrenPerNode }),
    reduceSingleLeafToSelf: true,
    leafType: 'file',
    ...(version === 0 ? { profile: 'unixfs-v0-2015' } : {})
  }
  let root
  for await (const entry of importer([{ content: createReadStream(path) }], new MemoryBlockstore(), options)) {
    root = entry.cid
  }
  console.log(root.toString())
} else if (mode === 'car') {
  const reader = await CarReader.fromBytes(await readFile(path))
  const blocks = []
  for await (const { cid, bytes } of reader.blocks()) {
    const digest = await sha256.digest(bytes)
    if (!equals(digest.bytes, cid.multihash.bytes)) {
      console.error(`block ${cid} does not hash to its CID`)
      process.exit(1)
    }
    blocks.push(cid.toString())
  }
  console.log(JSON.stringify({ roots: (await reader.getRoots()).map(String), blocks }))
} else {
  console.error('usage: unixfs-ref.mjs cid FILE CID_VERSION [CHUNK_SIZE MAX_LINKS] | car FILE.car')
  process.exit(2)
}
