public import Foundation

/// An archive as containerd's CRI `CheckpointContainer` writes it (checkpoint-ecosystem §1, containerd's
/// `status.dump` and `status`), built from the shipped CRI-O archive's CRIU images with the engine files replaced.
public enum ContainerdFixture {
    public static let crio: [UInt8] = (try? Fixtures.uncompressedBytes(
        of: "crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar")) ?? []
    public static let containerID = "6a2b7e9c7c0c6a0e2da0c82638b0528591e4810e00dc38506c2527633f86fb5c"

    /// 2025-11-25T05:00:00.123456789Z and a second later, in nanoseconds.
    public static let created: Int64 = 1_764_046_800_123_456_789
    public static let started: Int64 = 1_764_046_801_000_000_000

    public static func archive(config: String? = nil, status: String? = nil, internalStatus: String? = nil) throws -> String {
        var builder = TarBuilder()
        builder.copyEntries(of: crio) { ["spec.dump", "config.dump", "io.kubernetes.cri-o.LogPath"].contains($0) }
        builder.file("spec.dump", """
            {"ociVersion": "1.1.0", "annotations": {"io.container.manager": "containerd",
              "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.container-name": "counter",
              "io.kubernetes.cri.image-name": "registry.example.com/shop/counter:1.4",
              "io.kubernetes.cri.sandbox-name": "counter-7d9f8b6c5-x2kqz", "io.kubernetes.cri.sandbox-namespace": "shop",
              "io.kubernetes.cri.sandbox-uid": "5f0c7a1e-8b7d-4d0e-9a43-2c1b7e6f9a10",
              "io.kubernetes.cri.sandbox-id": "\(String(repeating: "e", count: 64))"},
             "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]}
            """)
        builder.file("config.dump", config ?? """
            {"id": "\(containerID)", "name": "counter", "rootfsImage": "registry.example.com/shop/counter:1.4",
             "rootfsImageRef": "sha256:7e63f2f9cf3ead6123ba467d90d5cbd0221e9838e3482e80ff42b0771e25994c",
             "rootfsImageName": "registry.example.com/shop/counter:1.4", "runtime": "io.containerd.runc.v2",
             "createdTime": "2025-11-25T05:00:00.123456789Z", "checkpointedTime": "2025-11-25T06:00:00Z",
             "restoredTime": "0001-01-01T00:00:00Z", "restored": false}
            """)
        // Go's encoding/json of the CRI message: no "reason", "exit_code" or "finished_at" (zero), state 1 = running.
        builder.file("status.dump", status ?? """
            {"id":"\(containerID)","metadata":{"name":"counter","attempt":1},"state":1,"created_at":\(created),\
            "started_at":\(started),"image":{"image":"registry.example.com/shop/counter:1.4"},\
            "image_ref":"registry.example.com/shop/counter@sha256:7e63f2f9cf3ead6123ba467d90d5cbd0221e9838e3482e80ff42b0771e25994c",\
            "labels":{"io.kubernetes.container.name":"counter"},"annotations":{"io.kubernetes.container.restartCount":"1"},\
            "mounts":[{"container_path":"/data","host_path":"/var/lib/kubelet/pods/x/volumes/data","readonly":true}],\
            "log_path":"/var/log/pods/shop_counter-7d9f8b6c5-x2kqz_5f0c7a1e/counter/1.log","resources":{"linux":{"cpu_shares":2}}}
            """)
        builder.file("status", internalStatus ?? """
            {"Pid":4242,"CreatedAt":\(created),"StartedAt":\(started),"FinishedAt":0,"ExitCode":0,"Reason":"","Message":"",\
            "Starting":false,"Removing":false,"Unknown":false,"Resources":null}
            """)
        return try Fixtures.write(builder.finished(), name: "containerd.tar")
    }

}
