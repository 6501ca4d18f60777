import PipelineRunner
import Platform

@main
struct App {
    static func main() async {
        await ServiceMain.run(serviceName: PipelineRunnerService.name, defaultPort: PipelineRunnerService.defaultPort, build: PipelineRunnerService.buildApplication)
    }
}
