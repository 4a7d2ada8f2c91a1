# Oracle-only: print each microstep's hashed command texts after a dry run.
require 'kameleon'
require 'kameleon/engine'
require 'json'
module DumpCmds
  def dryrun
    super
    %w(bootstrap setup export).each do |name|
      @recipe.sections.fetch(name).sequence do |macrostep|
        macrostep.sequence do |microstep|
          puts JSON.generate({"slug" => microstep.slug, "id" => microstep.identifier,
                              "cmds" => microstep.commands.map(&:string_cmd)})
        end
      end
    end
  end
end
Kameleon::Engine.prepend(DumpCmds)
