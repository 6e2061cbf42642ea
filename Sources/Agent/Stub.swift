import PaddockProtocol
public enum AgentStub {}
