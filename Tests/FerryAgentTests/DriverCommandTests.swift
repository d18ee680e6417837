@testable import FerryAgent
import FerryValidation
import Testing

/// The exact argv each driver builds, option by option, written out literally.
@Suite("runtime driver commands")
struct DriverCommandTests {
    let job = JobContext(id: "mig-1", directory: "/var/lib/ferry-agent/jobs/mig-1",
                         checkpoint: "ab12000000000000000000000000000000000000000000000000000000000000")
    let archive = "/var/lib/ferry-agent/jobs/mig-1/archive.tar"

    @Test("podman restore with no options imports the archive and nothing else")
    func podmanRestorePlain() {
        #expect(PodmanDriver().restoreCommand(archive: archive, options: RuntimeRestoreOptions(), job: job)
            == ["podman", "container", "restore", "--import=/var/lib/ferry-agent/jobs/mig-1/archive.tar"])
    }

    @Test("podman restore passes each option as its flag, in a fixed order")
    func podmanRestoreEachOption() {
        let driver = PodmanDriver()
        func argv(_ options: RuntimeRestoreOptions) -> [String] {
            Array(driver.restoreCommand(archive: archive, options: options, job: job).dropFirst(4))
        }
        #expect(argv(RuntimeRestoreOptions(restore: RestoreOptions(name: "web"))) == ["--name", "web"])
        #expect(argv(RuntimeRestoreOptions(restore: RestoreOptions(tcpEstablished: true))) == ["--tcp-established"])
        #expect(argv(RuntimeRestoreOptions(restore: RestoreOptions(tcpClose: true))) == ["--tcp-close"])
        #expect(argv(RuntimeRestoreOptions(keep: true)) == ["--keep"])
        #expect(argv(RuntimeRestoreOptions(restore: RestoreOptions(ignoreStaticIP: true))) == ["--ignore-static-ip"])
        #expect(argv(RuntimeRestoreOptions(restore: RestoreOptions(ignoreStaticMAC: true))) == ["--ignore-static-mac"])
        #expect(argv(RuntimeRestoreOptions(restore: RestoreOptions(ignoreRootfs: true))) == ["--ignore-rootfs"])
        #expect(argv(RuntimeRestoreOptions(ignoreVolumes: true)) == ["--ignore-volumes"])
        #expect(argv(RuntimeRestoreOptions(restore: RestoreOptions(pod: "shop"))) == ["--pod", "shop"])
        #expect(argv(RuntimeRestoreOptions(restore: RestoreOptions(name: ""))) == [], "an empty name adds nothing")
    }

    @Test("podman restore with every option")
    func podmanRestoreAll() {
        let options = RuntimeRestoreOptions(
            restore: RestoreOptions(name: "web-2", ignoreStaticIP: true, ignoreStaticMAC: true, ignoreRootfs: true,
                                    tcpEstablished: true, tcpClose: true, pod: "shop"),
            keep: true, ignoreVolumes: true)
        #expect(PodmanDriver().restoreCommand(archive: archive, options: options, job: job) == [
            "podman", "container", "restore", "--import=/var/lib/ferry-agent/jobs/mig-1/archive.tar",
            "--name", "web-2", "--tcp-established", "--tcp-close", "--keep", "--ignore-static-ip", "--ignore-static-mac",
            "--ignore-rootfs", "--ignore-volumes", "--pod", "shop",
        ])
    }

    @Test("podman checkpoint exports with the chosen compression and flags, the container last")
    func podmanCheckpoint() {
        let driver = PodmanDriver()
        let output = "/var/lib/ferry-agent/jobs/mig-1-checkpoint/checkpoint.tar.zst"
        #expect(driver.checkpointCommand(container: "web", output: output, options: CheckpointOptions(), job: job) == [
            "podman", "container", "checkpoint", "--export=/var/lib/ferry-agent/jobs/mig-1-checkpoint/checkpoint.tar.zst",
            "--compress=zstd", "web",
        ])
        #expect(driver.checkpointCommand(container: "web", output: "/x/checkpoint.tar.gz",
                                         options: CheckpointOptions(compress: .gzip, leaveRunning: true), job: job) == [
            "podman", "container", "checkpoint", "--export=/x/checkpoint.tar.gz", "--compress=gzip", "--leave-running", "web",
        ])
        #expect(driver.checkpointCommand(container: "0123abcd", output: "/x/checkpoint.tar",
                                         options: CheckpointOptions(compress: .none, leaveRunning: true, tcpEstablished: true, keep: true),
                                         job: job) == [
            "podman", "container", "checkpoint", "--export=/x/checkpoint.tar", "--compress=none", "--leave-running",
            "--tcp-established", "--keep", "0123abcd",
        ])
    }

    @Test("criu restore uses the job's images directory and only the TCP options")
    func criuRestore() {
        let driver = CRIUDriver()
        #expect(driver.restoreCommand(archive: archive, options: RuntimeRestoreOptions(), job: job) == [
            "criu", "restore", "--images-dir", "/var/lib/ferry-agent/jobs/mig-1/images", "--restore-detached", "--shell-job",
        ])
        let all = RuntimeRestoreOptions(
            restore: RestoreOptions(name: "web", ignoreStaticIP: true, ignoreStaticMAC: true, ignoreRootfs: true,
                                    tcpEstablished: true, tcpClose: true, pod: "shop"),
            keep: true, ignoreVolumes: true)
        #expect(driver.restoreCommand(archive: archive, options: all, job: job) == [
            "criu", "restore", "--images-dir", "/var/lib/ferry-agent/jobs/mig-1/images", "--restore-detached", "--shell-job",
            "--tcp-established", "--tcp-close",
        ])
    }

    @Test("criu cannot checkpoint, with DRIVER_UNSUPPORTED")
    func criuCheckpoint() {
        #expect(!CRIUDriver().canCheckpoint)
        #expect(throws: AgentError.self) {
            try CRIUDriver().checkpointCommand(container: "web", output: "/x", options: CheckpointOptions(), job: job)
        }
        do {
            _ = try CRIUDriver().checkpointCommand(container: "web", output: "/x", options: CheckpointOptions(), job: job)
        } catch {
            #expect(error.code == .driverUnsupported)
        }
    }

    @Test("the command driver replaces every placeholder inside its argument")
    func commandRestoreEveryPlaceholder() throws {
        let driver = CommandDriver(
            restore: "/usr/local/bin/restore.sh --archive={archive} {options_json} name={name} {container} ck:{checkpoint} {job} [{output}] {unknown}",
            checkpoint: nil)
        let options = RuntimeRestoreOptions(restore: RestoreOptions(name: "web", tcpEstablished: true),
                                            json: #"{"name":"web","tcp_established":true}"#)
        #expect(try driver.restoreCommand(archive: archive, options: options, job: job) == [
            "/usr/local/bin/restore.sh", "--archive=/var/lib/ferry-agent/jobs/mig-1/archive.tar",
            #"{"name":"web","tcp_established":true}"#, "name=web", "web",
            "ck:ab12000000000000000000000000000000000000000000000000000000000000", "mig-1", "[]", "{unknown}",
        ])
    }

    @Test("the command driver drops an argument that is only an empty placeholder, and splits on runs of spaces")
    func commandDropsEmpty() throws {
        let driver = CommandDriver(restore: "restore  {archive}   {name} {options_json}", checkpoint: nil)
        #expect(try driver.restoreCommand(archive: "/a.tar", options: RuntimeRestoreOptions(json: "{}"), job: job)
            == ["restore", "/a.tar", "{}"])
    }

    @Test("a placeholder's value is never expanded again")
    func commandValuesAreLiteral() throws {
        let driver = CommandDriver(restore: "r {options_json}", checkpoint: nil)
        let options = RuntimeRestoreOptions(json: #"{"note":"{archive} {job}"}"#)
        #expect(try driver.restoreCommand(archive: "/a.tar", options: options, job: job) == ["r", #"{"note":"{archive} {job}"}"#])
    }

    @Test("the command driver's checkpoint template gets container, output and options")
    func commandCheckpoint() throws {
        let driver = CommandDriver(restore: "r {archive}",
                                   checkpoint: "/bin/ckpt {container} --to={output} {archive} {options_json} {job} {name} {checkpoint}")
        let checkpointJob = JobContext(id: "mig-1-checkpoint", directory: "/w/jobs/mig-1-checkpoint")
        let options = CheckpointOptions(compress: .gzip, leaveRunning: true, json: #"{"compress":"gzip","leave_running":true}"#)
        #expect(try driver.checkpointCommand(container: "web", output: "/w/jobs/mig-1-checkpoint/checkpoint.tar.gz",
                                             options: options, job: checkpointJob) == [
            "/bin/ckpt", "web", "--to=/w/jobs/mig-1-checkpoint/checkpoint.tar.gz", "/w/jobs/mig-1-checkpoint/checkpoint.tar.gz",
            #"{"compress":"gzip","leave_running":true}"#, "mig-1-checkpoint",
        ])
        #expect(driver.canCheckpoint)
    }

    @Test("a command driver without a checkpoint template refuses checkpoints")
    func commandWithoutCheckpoint() {
        let driver = CommandDriver(restore: "r {archive}", checkpoint: nil)
        #expect(!driver.canCheckpoint)
        #expect(throws: AgentError(.driverUnsupported, "the command driver was started without --checkpoint-command")) {
            try driver.checkpointCommand(container: "web", output: "/x", options: CheckpointOptions(), job: job)
        }
    }

    @Test("--driver picks the driver and checks its templates")
    func driverByName() throws {
        #expect(try AgentConfiguration.driver(named: "podman", restoreCommand: nil, checkpointCommand: nil) is PodmanDriver)
        #expect(try AgentConfiguration.driver(named: "criu", restoreCommand: nil, checkpointCommand: nil) is CRIUDriver)
        #expect(try AgentConfiguration.driver(named: "command", restoreCommand: "r {archive}", checkpointCommand: nil) is CommandDriver)
        #expect(throws: AgentConfigurationError.self) {
            try AgentConfiguration.driver(named: "command", restoreCommand: nil, checkpointCommand: nil)
        }
        #expect(throws: AgentConfigurationError.self) {
            try AgentConfiguration.driver(named: "docker", restoreCommand: nil, checkpointCommand: nil)
        }
        #expect(throws: AgentConfigurationError.self) {
            try AgentConfiguration.driver(named: "podman", restoreCommand: "r", checkpointCommand: nil)
        }
    }
}
