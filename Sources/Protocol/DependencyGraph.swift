/// The dependencies among a job's tasks (`depends_on` by name), resolved once, when the
/// job is validated (`ValidatedJob.graph`): every name exists and means one task, and there
/// is no cycle. A pure value: the store only stores the edges it yields.
public struct DependencyGraph: Sendable {
    /// For each task (by index in the submission), the indices of the tasks it waits for.
    public let prerequisites: [[Int]]

    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    public init(tasks: [TaskSpec]) throws(Invalid) {
        guard tasks.contains(where: { !$0.dependsOn.isEmpty }) else {
            prerequisites = Array(repeating: [], count: tasks.count)
            return
        }
        var index: [String: Int] = [:]
        var ambiguous: Set<String> = []
        for (i, task) in tasks.enumerated() {
            if index.updateValue(i, forKey: task.name) != nil { ambiguous.insert(task.name) }
        }
        var edges: [[Int]] = []
        for task in tasks {
            var before: [Int] = []
            for name in task.dependsOn {
                guard let target = index[name] else {
                    throw Invalid(description: "task '\(task.name)' depends on '\(name)', which is no task of this job")
                }
                guard !ambiguous.contains(name) else {
                    throw Invalid(description: "task '\(task.name)' depends on '\(name)', a name several tasks share")
                }
                before.append(target)
            }
            edges.append(Array(Set(before)).sorted())
        }
        // Kahn's algorithm: whatever cannot be ordered lies on a cycle.
        var waiting = edges.map(\.count)
        var dependents = Array(repeating: [Int](), count: tasks.count)
        for (task, before) in edges.enumerated() { for b in before { dependents[b].append(task) } }
        var ready = waiting.indices.filter { waiting[$0] == 0 }
        var ordered = 0
        while let next = ready.popLast() {
            ordered += 1
            for d in dependents[next] {
                waiting[d] -= 1
                if waiting[d] == 0 { ready.append(d) }
            }
        }
        if ordered < tasks.count {
            let stuck = waiting.indices.filter { waiting[$0] > 0 }.prefix(5).map { "'\(tasks[$0].name)'" }
            throw Invalid(description: "depends_on has a cycle (through \(stuck.joined(separator: ", ")))")
        }
        prerequisites = edges
    }
}
