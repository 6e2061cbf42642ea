import ArgumentParser
import Yams
import PaddockMaster
import PaddockAgent
@main struct Paddock: ParsableCommand { func run() {} }
