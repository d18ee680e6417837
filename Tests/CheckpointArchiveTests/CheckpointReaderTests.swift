import CheckpointArchive
import FerryTestSupport
import Foundation
import Glibc
import Testing

/// The manifest for each engine's layout, built from the real archives and variants made on the fly.
@Suite("checkpoint reader")
struct CheckpointReaderTests {
    static let counter: [UInt8] = (try? Fixtures.uncompressedBytes(of: "podman-counter-none.tar")) ?? []
    static let crio: [UInt8] = (try? Fixtures.uncompressedBytes(
        of: "crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar")) ?? []

    @Test("a Podman archive: identity, network, sizes, rootfs diff, deleted files")
    func podman() throws {
        let manifest = try CheckpointReader.read(path: Fixtures.archive("podman-counter-none.tar"))
        #expect(manifest.engine == .podman)
        #expect(manifest.container.name == "counter")
        #expect(manifest.container.id == "6a2b7e9c7c0c6a0e2da0c82638b0528591e4810e00dc38506c2527633f86fb5c")
        #expect(manifest.container.imageID == "7b4c6855a900a7d4666e81a11ae3ef915ce24d3c868dc26ab296d7ca73f52464")
        #expect(manifest.networks == [NetworkAttachment(name: "podman", interfaces: [
            NetworkInterface(name: "eth0", addresses: ["10.88.0.6/16"], gateways: ["10.88.0.1"], mac: "42:aa:5b:c0:e4:dc"),
        ])])
        #expect(manifest.deletedFiles == ["/etc/passwd"])
        let diff = try #require(manifest.rootfsDiff)
        #expect(diff.size == 5120)
        #expect(diff.compression == "none")
        #expect(diff.regularFiles >= 2, "created.txt and state")
        #expect(diff.error == nil)
        #expect(manifest.devShm != nil)
        #expect(manifest.archive.compression == "none")
        #expect(manifest.archive.rootEntries.contains("checkpoint"))
        #expect(manifest.criu?.architecture?.name == "x86_64")
        #expect(manifest.criu?.processes.map(\.pid) == [1, 12])

        var names: [String] = []
        try CheckpointReader.listEntries(ofInnerTar: "rootfs-diff.tar", inArchiveAt: Fixtures.archive("podman-counter-none.tar")) {
            names.append($0.path)
        }
        #expect(names.contains { $0.hasSuffix("tmp/created.txt") })
        #expect(names.contains { $0.hasSuffix("var/lib/app/state") })
    }

    @Test("a CRI-O archive: pod identity, IP annotation, bind mounts, checkpoint time with its offset")
    func crio() throws {
        let manifest = try CheckpointReader.read(path: Fixtures.archive(
            "crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar"))
        #expect(manifest.engine == .crio)
        #expect(manifest.container.name == "counter")
        #expect(manifest.container.configName == "k8s_counter_counter-7d9f8b6c5-x2kqz_shop_5f0c7a1e-8b7d-4d0e-9a43-2c1b7e6f9a10_0")
        #expect(manifest.container.checkpointed == "2026-11-25T10:30:00+05:30")
        #expect(manifest.pod.name == "counter-7d9f8b6c5-x2kqz")
        #expect(manifest.pod.namespace == "shop")
        #expect(manifest.pod.uid == "5f0c7a1e-8b7d-4d0e-9a43-2c1b7e6f9a10")
        #expect(manifest.podIPs == ["10.244.1.17"])
        #expect(manifest.bindMounts == [BindMount(source: "/var/lib/shop/cache", destination: "/cache", fileType: "directory", permissions: 493)])
        #expect(manifest.hasDumpLog)
    }

    @Test("a containerd archive: annotations, status.dump, a gzip rootfs diff")
    func containerd() throws {
        // The CRI-O archive re-wrapped as containerd writes it: containerd annotations, status.dump, and the
        // rootfs diff as the gzip layer blob it stores under the .tar name.
        let diff = TarBuilder.extract("rootfs-diff.tar", from: Self.crio)
        let gzipDiff = try Fixtures.compress(diff, with: "gzip")
        var builder = TarBuilder()
        builder.copyEntries(of: Self.crio) { ["spec.dump", "rootfs-diff.tar", "bind.mounts", "deleted.files"].contains($0) }
        builder.file("spec.dump", """
            {"annotations": {"io.container.manager": "containerd",
              "io.kubernetes.cri.container-name": "counter", "io.kubernetes.cri.sandbox-name": "counter-pod",
              "io.kubernetes.cri.sandbox-namespace": "shop", "io.kubernetes.cri.sandbox-uid": "uid-1",
              "io.kubernetes.cri.sandbox-id": "\(String(repeating: "e", count: 64))"},
             "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]}
            """)
        builder.file("status.dump", #"{"id": "6a2b", "metadata": {"name": "counter", "attempt": 0}, "image": {"image": "docker.io/library/busybox:1"}, "image_ref": "sha256:abc", "created_at": "1732500000000000000"}"#)
        builder.file("rootfs-diff.tar", gzipDiff)
        let path = try Fixtures.write(builder.finished())
        let manifest = try CheckpointReader.read(path: path)
        #expect(manifest.engine == .containerd)
        #expect(manifest.container.name == "counter")
        #expect(manifest.pod.name == "counter-pod")
        #expect(manifest.pod.namespace == "shop")
        #expect(manifest.pod.sandboxID == String(repeating: "e", count: 64))
        #expect(manifest.mounts == [MountPoint(destination: "/proc", type: "proc", source: "proc", options: nil)])
        let summary = try #require(manifest.rootfsDiff)
        #expect(summary.compression == "gzip")
        #expect(summary.regularFiles >= 2)
        #expect(summary.size == Int64(gzipDiff.count))
    }

    @Test("Podman 3's network.status (an array of CNI results) and a pod's null")
    func olderNetworkStatus() throws {
        var builder = TarBuilder()
        builder.copyEntries(of: Self.counter) { $0 == "network.status" }
        builder.file("network.status", """
            [{"cniVersion": "0.4.0", "interfaces": [{"name": "cni-podman0", "mac": "aa:aa:aa:aa:aa:aa"},
               {"name": "eth0", "mac": "0a:58:0a:58:00:05", "sandbox": "/run/netns/x"}],
              "ips": [{"version": "4", "interface": 1, "address": "10.88.0.5/16", "gateway": "10.88.0.1"}]}]
            """)
        let manifest = try CheckpointReader.read(path: try Fixtures.write(builder.finished()))
        #expect(manifest.networks == [NetworkAttachment(name: "cni", interfaces: [
            NetworkInterface(name: "eth0", addresses: ["10.88.0.5/16"], gateways: ["10.88.0.1"], mac: "0a:58:0a:58:00:05"),
        ])])

        let inPod = try CheckpointReader.read(path: Fixtures.archive("podman-inpod.tar"))
        #expect(inPod.networks.isEmpty)
        #expect(inPod.pod.sandboxID == "8f5406a12d47dad454d6b42b5bf5fd66e9b7e148c0ab2f00af8458b27a1fe0c7")
    }

    @Test("a broken rootfs diff is recorded, not fatal")
    func brokenRootfsDiff() throws {
        var builder = TarBuilder()
        builder.copyEntries(of: Self.counter) { $0 == "rootfs-diff.tar" }
        builder.file("rootfs-diff.tar", [UInt8](repeating: 0x5a, count: 3000))
        let manifest = try CheckpointReader.read(path: try Fixtures.write(builder.finished()))
        #expect(manifest.rootfsDiff?.error?.hasPrefix("ARCHIVE_CORRUPT") == true)
    }

    @Test("reading from a pipe needs no second pass when the page maps come first")
    func pipeSource() throws {
        var pipe: [Int32] = [0, 0]
        #expect(Glibc.pipe(&pipe) == 0)
        let (readEnd, writeEnd) = (pipe[0], pipe[1])
        let bytes = Self.counter
        let writer = Thread {
            bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(writeEnd, buffer.baseAddress! + offset, min(65536, buffer.count - offset))
                    if written <= 0 { break }
                    offset += written
                }
            }
            close(writeEnd)
        }
        writer.start()
        let manifest = try CheckpointReader.read(source: FileDescriptorSource(descriptor: readEnd, ownsDescriptor: true))
        #expect(manifest.criu?.root?.cmdline?.hasPrefix("sh -c i=0;") == true)
        #expect(manifest.criu?.root?.environment?.contains("SECRET_TOKEN=hunter2") == true)
    }

    /// A file source that counts the bytes it streams, with or without reads in place.
    final class CountingSource: ByteSource {
        let file: FileDescriptorSource
        let inPlace: Bool
        var streamed = 0
        init(path: String, inPlace: Bool) throws {
            file = try FileDescriptorSource(path: path, chunkSize: 4096)
            self.inPlace = inPlace
        }
        func nextChunk() throws -> UnsafeRawBufferPointer {
            let chunk = try file.nextChunk()
            streamed += chunk.count
            return chunk
        }
        func skip(_ count: Int64) throws -> Int64 { try file.skip(count) }
        var readsAtOffsets: Bool { inPlace && file.readsAtOffsets }
        func positionalRead(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            try file.positionalRead(at: offset, into: buffer)
        }
    }

    @Test("a plain tar file's memory pages are read in place: the same argv and environments, the pages not streamed")
    func pagesReadInPlace() throws {
        let path = Fixtures.archive("podman-counter-none.tar")
        let inPlace = try CountingSource(path: path, inPlace: true)
        let streamed = try CountingSource(path: path, inPlace: false)
        let fast = try CheckpointReader.read(source: inPlace)
        let slow = try CheckpointReader.read(source: streamed)
        let processes = try #require(slow.criu?.processes)
        #expect(processes.count >= 2)
        #expect(fast.criu?.processes.map(\.cmdline) == processes.map(\.cmdline))
        #expect(fast.criu?.processes.map(\.environment) == processes.map(\.environment))
        #expect(fast.criu?.root?.environment?.contains("SECRET_TOKEN=hunter2") == true)
        // pages-1.img and pages-2.img hold 140 KiB; read in place, only the pages holding argv and environment
        // (a few KiB) are read, and the entries are skipped with lseek.
        #expect(inPlace.streamed + 100_000 < streamed.streamed, "streamed \(inPlace.streamed) vs \(streamed.streamed) bytes")
        #expect(fast.sizes.memoryPages == slow.sizes.memoryPages)
    }

    @Test("pages before their page map are read in a second pass from a file")
    func pagesFirst() throws {
        // Move every mm-*/pagemap-* image behind the pages-*.img files.
        let isMap = { (path: String) in path.hasPrefix("checkpoint/mm-") || path.hasPrefix("checkpoint/pagemap-") }
        var archive = TarBuilder()
        archive.copyEntries(of: Self.counter) { isMap($0) }
        archive.copyEntries(of: Self.counter) { !isMap($0) }
        let manifest = try CheckpointReader.read(path: try Fixtures.write(archive.finished()))
        #expect(manifest.criu?.root?.environment?.contains("SECRET_TOKEN=hunter2") == true)
        #expect(manifest.criu?.processes.first { $0.pid == 12 }?.cmdline == "sleep 1 ")
    }
}
