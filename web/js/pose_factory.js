// 3D Pose Factory front-end extension (progress, batch browser, previews arrive with the nodes issue).
import { app } from "../../scripts/app.js";

app.registerExtension({ name: "PoseFactory.core" });
