import Foundation
import PaddockProtocol

extension TaskRunner {
    /// The lease's command, working directory and environment with its paths mapped by the job's
    /// and the agent's rules (`PathMappingEnvironment`).
    func mappedLaunch(workDir: String) -> PathMappingEnvironment.Launch {
        PathMappingEnvironment.prepare(argv: lease.command, environment: environment(workDir: workDir), taskEnv: lease.env,
                                       cwd: lease.cwd, agent: config.pathMapping)
    }
}
